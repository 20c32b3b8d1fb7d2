//! The CPU the kernels run on: its model, the widest SIMD level the `gemm` kernels dispatch to,
//! and its cache sizes. Benchmarks print it beside their figures, and the kernels' size
//! thresholds are derived from it rather than fixed to one machine's best value.

use std::fmt;

/// The widest instruction set gemm's f32 kernels use on this CPU (gemm detects it at run time;
/// dfdx 0.13's own products stop at AVX2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// No vector kernels kd knows of (not x86-64, or below AVX2): gemm's portable kernels.
    Portable,
    /// AVX2 with FMA: 8 f32 lanes.
    Avx2,
    /// AVX-512F: 16 f32 lanes.
    Avx512,
}

impl SimdLevel {
    /// This CPU's level.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return SimdLevel::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Portable
    }

    /// How it is usually written.
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "AVX2+FMA",
            SimdLevel::Avx512 => "AVX-512F",
        }
    }
}

/// The CPU, as far as the kernels care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The model name (`/proc/cpuinfo`), or "unknown CPU".
    pub model: String,
    /// The SIMD level gemm dispatches to.
    pub simd: SimdLevel,
    /// Per-core L1 data cache in bytes, when the OS says.
    pub l1d_bytes: Option<usize>,
    /// Per-core L2 cache in bytes, when the OS says.
    pub l2_bytes: Option<usize>,
    /// The L3 cache in bytes (shared), when the OS says.
    pub l3_bytes: Option<usize>,
}

impl Machine {
    /// Reads this machine's description (cached after the first call).
    pub fn get() -> &'static Machine {
        static MACHINE: std::sync::OnceLock<Machine> = std::sync::OnceLock::new();
        MACHINE.get_or_init(Machine::detect)
    }

    fn detect() -> Machine {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cache = |level: &str, kind: &str| -> Option<usize> {
            let dir = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
            dir.flatten().find_map(|entry| {
                let read = |name: &str| std::fs::read_to_string(entry.path().join(name)).ok();
                let matches = read("level")?.trim() == level && read("type")?.trim() == kind;
                matches.then(|| parse_cache_size(read("size")?.trim())).flatten()
            })
        };
        Machine {
            model,
            simd: SimdLevel::detect(),
            l1d_bytes: cache("1", "Data"),
            l2_bytes: cache("2", "Unified"),
            l3_bytes: cache("3", "Unified"),
        }
    }
}

/// `"32K"`, `"2048K"`, `"32M"` (the kernel's sysfs notation) in bytes.
fn parse_cache_size(text: &str) -> Option<usize> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let value: usize = digits.parse().ok()?;
    match unit {
        "" => Some(value),
        "K" => Some(value << 10),
        "M" => Some(value << 20),
        _ => None,
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = |bytes: Option<usize>| bytes.map_or("?".to_string(), |b| format!("{} KiB", b >> 10));
        write!(
            f,
            "{} ({}; L1d {}, L2 {}, L3 {})",
            self.model,
            self.simd.name(),
            kib(self.l1d_bytes),
            kib(self.l2_bytes),
            kib(self.l3_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse_in_the_kernels_notation() {
        assert_eq!(parse_cache_size("32K"), Some(32 << 10));
        assert_eq!(parse_cache_size("32768K"), Some(32 << 20));
        assert_eq!(parse_cache_size("2M"), Some(2 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("3G"), None);
        assert_eq!(parse_cache_size("K"), None);
    }

    #[test]
    fn the_machine_names_its_simd_level() {
        let machine = Machine::get();
        assert!(machine.to_string().contains(machine.simd.name()), "{machine}");
    }
}
