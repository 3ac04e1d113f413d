//! `sys/host-info`: the host the server runs on, in the shape OpenBao returns (gopsutil's
//! `cpu`, `cpu_times`, `disk`, `host` and `memory` structures plus a `timestamp`).
//!
//! Read straight from `/proc` and `statvfs` (Linux only; elsewhere each part is missing and
//! named in `warnings`, as OpenBao reports a part it could not collect). A plain logical read:
//! the ACL decides (OpenBao does not require `sudo`).

use std::collections::BTreeMap;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Map, Value, json};
use tresor_core::logical::LogicalResponse;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{ApiRequest, Operation};
use crate::response::{json_response, logical_envelope};

/// Linux reports CPU times in clock ticks of 1/100 s (`USER_HZ`) on every architecture Tresor
/// builds for.
const TICKS_PER_SECOND: f64 = 100.0;

pub async fn read(_state: &AppState, request: &ApiRequest) -> Result<Response, ApiError> {
    super::allow_logical(request, &[Operation::Read])?;
    // A few small files; off the async workers all the same (`/proc` reads can block).
    let (data, warnings) = tokio::task::spawn_blocking(collect).await.map_err(|_| {
        ApiError::from(tresor_core::CoreError::Internal(
            "host info collection failed".into(),
        ))
    })?;
    let mut response = LogicalResponse::data(data);
    response.warnings = warnings;
    Ok(json_response(
        StatusCode::OK,
        &logical_envelope(response, false),
    ))
}

/// One part of the answer; its error names what could not be read.
type Collector = fn() -> Result<Value, String>;

fn collect() -> (Map<String, Value>, Vec<String>) {
    let mut data = Map::new();
    let mut warnings = Vec::new();
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    data.insert("timestamp".into(), Value::String(timestamp));
    let parts: [(&str, Collector); 5] = [
        ("host", host),
        ("memory", memory),
        ("disk", disk),
        ("cpu", cpu),
        ("cpu_times", cpu_times),
    ];
    for (name, part) in parts {
        match part() {
            Ok(v) => {
                data.insert(name.into(), v);
            }
            Err(e) => warnings.push(format!("error while collecting {name} info: {e}")),
        }
    }
    (data, warnings)
}

fn read_to_string(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

/// `KEY=value` lines of `/etc/os-release`, quotes removed.
fn os_release() -> BTreeMap<String, String> {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn host() -> Result<Value, String> {
    let uptime = read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |s| s as u64);
    let boot_time = read_to_string("/proc/stat")?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let procs = std::fs::read_dir("/proc")
        .map_err(|e| format!("/proc: {e}"))?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .count();
    let release = os_release();
    let platform = release.get("ID").cloned().unwrap_or_default();
    let family = release
        .get("ID_LIKE")
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| platform.clone());
    // gopsutil reads Debian's own version file, which has the point release.
    let version = match first_line("/etc/debian_version") {
        v if !v.is_empty() && platform == "debian" => v,
        _ => release.get("VERSION_ID").cloned().unwrap_or_default(),
    };
    let (virt_system, virt_role) = if std::path::Path::new("/.dockerenv").exists() {
        ("docker", "guest")
    } else {
        ("", "")
    };
    let host_id = match first_line("/sys/class/dmi/id/product_uuid") {
        id if !id.is_empty() => id,
        _ => first_line("/proc/sys/kernel/random/boot_id"),
    }
    .to_lowercase();
    Ok(json!({
        "hostname": first_line("/proc/sys/kernel/hostname"),
        "uptime": uptime,
        "bootTime": boot_time,
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": platform,
        "platformFamily": family,
        "platformVersion": version,
        "kernelVersion": first_line("/proc/sys/kernel/osrelease"),
        "kernelArch": std::env::consts::ARCH,
        "virtualizationSystem": virt_system,
        "virtualizationRole": virt_role,
        "hostid": host_id,
    }))
}

fn memory() -> Result<Value, String> {
    let text = read_to_string("/proc/meminfo")?;
    let mut kb: BTreeMap<&str, u64> = BTreeMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let Some(value) = words.next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        // Sizes are in kB; the HugePages_* lines are page counts.
        let scale = if words.next() == Some("kB") { 1024 } else { 1 };
        kb.insert(key, value.saturating_mul(scale));
    }
    let get = |k: &str| kb.get(k).copied().unwrap_or(0);
    let total = get("MemTotal");
    let available = get("MemAvailable");
    let used = total.saturating_sub(available);
    let used_percent = if total == 0 {
        0.0
    } else {
        used as f64 / total as f64 * 100.0
    };
    Ok(json!({
        "total": total,
        "available": available,
        "used": used,
        "usedPercent": used_percent,
        "free": get("MemFree"),
        "active": get("Active"),
        "inactive": get("Inactive"),
        "wired": 0,
        "laundry": 0,
        "buffers": get("Buffers"),
        "cached": get("Cached"),
        "writeback": get("Writeback"),
        "dirty": get("Dirty"),
        "writebacktmp": get("WritebackTmp"),
        "shared": get("Shmem"),
        "slab": get("Slab"),
        "sreclaimable": get("SReclaimable"),
        "sunreclaim": get("SUnreclaim"),
        "pagetables": get("PageTables"),
        "swapcached": get("SwapCached"),
        "commitlimit": get("CommitLimit"),
        "committedas": get("Committed_AS"),
        "hightotal": get("HighTotal"),
        "highfree": get("HighFree"),
        "lowtotal": get("LowTotal"),
        "lowfree": get("LowFree"),
        "swaptotal": get("SwapTotal"),
        "swapfree": get("SwapFree"),
        "mapped": get("Mapped"),
        "vmalloctotal": get("VmallocTotal"),
        "vmallocused": get("VmallocUsed"),
        "vmallocchunk": get("VmallocChunk"),
        "hugepagestotal": get("HugePages_Total"),
        "hugepagesfree": get("HugePages_Free"),
        "hugepagesize": get("Hugepagesize"),
    }))
}

/// File systems backed by a device (not `nodev` in `/proc/filesystems`), one entry per mount
/// point, as gopsutil's `disk.Partitions(false)` lists them.
fn disk() -> Result<Value, String> {
    let filesystems = read_to_string("/proc/filesystems")?;
    let physical: Vec<&str> = filesystems
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mounts = read_to_string("/proc/self/mounts")?;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(point), Some(fstype)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        // /proc/self/mounts escapes spaces and the like as octal (`\040`).
        let point = unescape_octal(point);
        if !physical.contains(fstype) || !seen.insert(point.clone()) {
            continue;
        }
        let Ok(stat) = rustix::fs::statvfs(point.as_str()) else {
            continue;
        };
        let block = stat.f_frsize.max(1);
        let total = stat.f_blocks.saturating_mul(block);
        let free = stat.f_bavail.saturating_mul(block);
        let used = stat
            .f_blocks
            .saturating_sub(stat.f_bfree)
            .saturating_mul(block);
        let percent = |part: u64, whole: u64| {
            if whole == 0 {
                0.0
            } else {
                part as f64 / whole as f64 * 100.0
            }
        };
        let inodes_used = stat.f_files.saturating_sub(stat.f_ffree);
        out.push(json!({
            "path": point,
            "fstype": fstype,
            "total": total,
            "free": free,
            "used": used,
            "usedPercent": percent(used, used.saturating_add(free)),
            "inodesTotal": stat.f_files,
            "inodesUsed": inodes_used,
            "inodesFree": stat.f_ffree,
            "inodesUsedPercent": percent(inodes_used, stat.f_files),
        }));
    }
    Ok(Value::Array(out))
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\'
            && let Some(code) = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One entry per logical CPU of `/proc/cpuinfo`.
fn cpu() -> Result<Value, String> {
    let text = read_to_string("/proc/cpuinfo")?;
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let fields: BTreeMap<&str, &str> = block
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| fields.get(k).copied().unwrap_or_default();
        let int = |k: &str| get(k).parse::<i64>().unwrap_or(0);
        let cache_kb = get("cache size")
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0);
        out.push(json!({
            "cpu": int("processor"),
            "vendorId": get("vendor_id"),
            "family": get("cpu family"),
            "model": get("model"),
            "stepping": int("stepping"),
            "physicalId": get("physical id"),
            "coreId": get("core id"),
            "cores": 1,
            "modelName": get("model name"),
            "mhz": get("cpu MHz").parse::<f64>().unwrap_or(0.0),
            "cacheSize": cache_kb,
            "flags": get("flags").split_whitespace().collect::<Vec<_>>(),
            "microcode": get("microcode"),
        }));
    }
    Ok(Value::Array(out))
}

/// Per-CPU times from `/proc/stat`, in seconds.
fn cpu_times() -> Result<Value, String> {
    let text = read_to_string("/proc/stat")?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        // The per-CPU lines only ("cpu0", "cpu1", …), as gopsutil's `Times(true)`.
        if !name.starts_with("cpu") || name == "cpu" {
            continue;
        }
        let t: Vec<f64> = words
            .map(|w| w.parse::<f64>().unwrap_or(0.0) / TICKS_PER_SECOND)
            .collect();
        let at = |i: usize| t.get(i).copied().unwrap_or(0.0);
        out.push(json!({
            "cpu": name,
            "user": at(0),
            "system": at(2),
            "idle": at(3),
            "nice": at(1),
            "iowait": at(4),
            "irq": at(5),
            "softirq": at(6),
            "steal": at(7),
            "guest": at(8),
            "guestNice": at(9),
        }));
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes_in_mount_points_are_decoded() {
        assert_eq!(unescape_octal("/mnt/my\\040disk"), "/mnt/my disk");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/trailing\\"), "/trailing\\");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_part_is_collected_on_linux() {
        let (data, warnings) = collect();
        assert!(warnings.is_empty(), "{warnings:?}");
        for key in ["timestamp", "host", "memory", "disk", "cpu", "cpu_times"] {
            assert!(data.contains_key(key), "{key} missing");
        }
        assert!(data["memory"]["total"].as_u64().is_some_and(|t| t > 0));
        assert!(data["cpu"].as_array().is_some_and(|c| !c.is_empty()));
        assert!(
            data["cpu_times"][0]["cpu"]
                .as_str()
                .is_some_and(|c| c.starts_with("cpu"))
        );
        assert_eq!(data["host"]["os"], "linux");
    }
}
