//! The top-level `telemetry { … }` block and a listener's `telemetry` and
//! `inflight_requests_logging` blocks.

use hcl_edit::structure::Block;

use super::{Cx, Section};
use crate::error::{Located, Problem};
use crate::model::{ListenerTelemetry, TelemetryConfig};
use crate::unsupported;

const KEYS: &[&str] = &["prometheus_retention_time", "disable_hostname"];

pub(super) fn read(cx: &Cx, block: &Block) -> Result<TelemetryConfig, Located> {
    if !block.labels.is_empty() {
        return Err(Located::new(
            cx.block_line(block),
            Problem::Labels {
                name: "telemetry".to_owned(),
                found: block.labels.len(),
            },
        ));
    }
    let section = Section {
        place: "in telemetry".to_owned(),
        keys: KEYS,
        blocks: &[],
        unsupported_keys: unsupported::TELEMETRY_KEYS,
        unsupported_blocks: &[],
    };
    let mut telemetry = TelemetryConfig::default();
    for attr in section.attributes(cx, &block.body)? {
        let value = cx.value(attr);
        match value.key() {
            "prometheus_retention_time" => {
                telemetry.prometheus_retention_time = value.duration()?;
            }
            "disable_hostname" => telemetry.disable_hostname = value.boolean()?,
            "unauthenticated_metrics_access" => {
                // OpenBao reads this one per listener; say where it goes rather than "unknown".
                return Err(value.invalid(
                    "belongs in a listener: listener \"tcp\" { telemetry { unauthenticated_metrics_access = true } }"
                        .to_owned(),
                ));
            }
            _ => return Err(section.unknown_attribute(cx, attr)),
        }
    }
    Ok(telemetry)
}

/// `listener "tcp" { telemetry { … } }`.
pub(super) fn read_listener_telemetry(
    cx: &Cx,
    block: &Block,
    into: &mut ListenerTelemetry,
) -> Result<(), Located> {
    let section = Section {
        place: "in the listener's telemetry".to_owned(),
        keys: &["unauthenticated_metrics_access"],
        blocks: &[],
        unsupported_keys: unsupported::LISTENER_TELEMETRY_KEYS,
        unsupported_blocks: &[],
    };
    for attr in section.attributes(cx, &block.body)? {
        let value = cx.value(attr);
        match value.key() {
            "unauthenticated_metrics_access" => {
                into.unauthenticated_metrics_access = value.boolean()?;
            }
            _ => return Err(section.unknown_attribute(cx, attr)),
        }
    }
    Ok(())
}

/// `listener "tcp" { inflight_requests_logging { … } }`.
pub(super) fn read_listener_in_flight(
    cx: &Cx,
    block: &Block,
    into: &mut ListenerTelemetry,
) -> Result<(), Located> {
    let section = Section {
        place: "in the listener's inflight_requests_logging".to_owned(),
        keys: &["unauthenticated_in_flight_requests_access"],
        blocks: &[],
        unsupported_keys: &[],
        unsupported_blocks: &[],
    };
    for attr in section.attributes(cx, &block.body)? {
        let value = cx.value(attr);
        match value.key() {
            "unauthenticated_in_flight_requests_access" => {
                into.unauthenticated_in_flight_requests_access = value.boolean()?;
            }
            _ => return Err(section.unknown_attribute(cx, attr)),
        }
    }
    Ok(())
}
