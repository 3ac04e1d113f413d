//! The controller's log lines on stderr: `<RFC 3339 time> <LEVEL> <message>`. Messages are
//! built from names and safe reasons only (never a fetched value).

fn line(level: &str, message: &str) {
    let now = tresor_sdk::timestamp::rfc3339_nano(tresor_sdk::timestamp::now_nanos());
    eprintln!("{now} {level} {message}");
}

pub fn info(message: &str) {
    line("INFO", message);
}

pub fn warn(message: &str) {
    line("WARN", message);
}
