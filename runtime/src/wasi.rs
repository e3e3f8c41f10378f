//! The WASI preview 1 functions guests use, registered once on the linker.
//!
//! A guest gets no files, sockets, arguments or environment variables, so a full `WasiCtx`
//! per event (tables, streams, clocks, a random generator) is work for nothing. These few
//! functions read the event's [`StoreState`] instead: stdout and stderr go into the event's
//! bounded capture, clocks and randomness come from the host at call time (never from a
//! snapshot), `proc_exit` ends the event, and every other preview 1 function a module
//! imports answers `ENOSYS` (see [`stub_missing`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore as _;
use wasmtime::{Caller, Linker, Module, Val, ValType};

use crate::invoke::StoreState;

const MODULE: &str = "wasi_snapshot_preview1";
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// The guest called `proc_exit(code)`: the event ends.
#[derive(Debug, thiserror::Error)]
#[error("the guest called proc_exit({0})")]
pub(crate) struct GuestExit(pub(crate) i32);

/// Output to one of the guest's standard streams, kept up to a capacity.
#[derive(Default)]
pub(crate) struct Captured {
    pub(crate) bytes: Vec<u8>,
    pub(crate) truncated: bool,
}

impl Captured {
    fn append(&mut self, data: &[u8], capacity: usize) {
        let room = capacity.saturating_sub(self.bytes.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }
}

fn memory(caller: &mut Caller<'_, StoreState>) -> wasmtime::Result<wasmtime::Memory> {
    crate::host::guest_memory(caller)
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn write(data: &mut [u8], at: u32, bytes: &[u8]) -> bool {
    let at = at as usize;
    match data.get_mut(at..at + bytes.len()) {
        Some(target) => {
            target.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Writes a pair of u32 counters (sizes_get functions): both zero.
fn zeros(mut caller: Caller<'_, StoreState>, a: i32, b: i32) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    let data = memory.data_mut(&mut caller);
    let ok = write(data, a as u32, &0u32.to_le_bytes()) && write(data, b as u32, &0u32.to_le_bytes());
    Ok(if ok { SUCCESS } else { EFAULT })
}

/// Adds the functions to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, StoreState>,
         fd: i32,
         iovs: i32,
         iovs_len: i32,
         nwritten: i32|
         -> wasmtime::Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let memory = memory(&mut caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let capacity = state.limits.log_bytes;
            let stream = if fd == 1 { &mut state.stdout } else { &mut state.stderr };
            let mut total: u32 = 0;
            for i in 0..iovs_len.max(0) as usize {
                let at = iovs as u32 as usize + i * 8;
                let (Some(ptr), Some(len)) = (read_u32(data, at), read_u32(data, at + 4)) else { return Ok(EFAULT) };
                let Some(bytes) = data.get(ptr as usize..ptr as usize + len as usize) else { return Ok(EFAULT) };
                stream.append(bytes, capacity);
                total = total.wrapping_add(len);
            }
            Ok(if write(data, nwritten as u32, &total.to_le_bytes()) { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |mut caller: Caller<'_, StoreState>, fd: i32, _iovs: i32, _len: i32, nread: i32| -> wasmtime::Result<i32> {
            if fd != 0 {
                return Ok(EBADF);
            }
            // stdin is empty.
            let memory = memory(&mut caller)?;
            Ok(if write(memory.data_mut(&mut caller), nread as u32, &0u32.to_le_bytes()) { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, StoreState>, _fd: i32| -> i32 { EBADF })?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Caller<'_, StoreState>, fd: i32, _offset: i64, _whence: i32, _new: i32| {
            if (0..=2).contains(&fd) { ESPIPE } else { EBADF }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut caller: Caller<'_, StoreState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
            if !(0..=2).contains(&fd) {
                return Ok(EBADF);
            }
            // A character device with no flags; rights: fd_read (bit 1) for stdin, fd_write
            // (bit 6) for stdout and stderr.
            let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 };
            let mut bytes = [0u8; 24];
            bytes[0] = 2;
            bytes[8..16].copy_from_slice(&rights.to_le_bytes());
            let memory = memory(&mut caller)?;
            Ok(if write(memory.data_mut(&mut caller), stat as u32, &bytes) { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(MODULE, "fd_prestat_get", |_: Caller<'_, StoreState>, _fd: i32, _buf: i32| -> i32 { EBADF })?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Caller<'_, StoreState>, _fd: i32, _p: i32, _l: i32| -> i32 { EBADF },
    )?;
    linker.func_wrap(MODULE, "environ_sizes_get", zeros)?;
    linker.func_wrap(MODULE, "args_sizes_get", zeros)?;
    linker.func_wrap(MODULE, "environ_get", |_: Caller<'_, StoreState>, _a: i32, _b: i32| -> i32 { SUCCESS })?;
    linker.func_wrap(MODULE, "args_get", |_: Caller<'_, StoreState>, _a: i32, _b: i32| -> i32 { SUCCESS })?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut caller: Caller<'_, StoreState>, id: i32, _precision: i64, time: i32| -> wasmtime::Result<i32> {
            let nanos = match id {
                0 => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
                1..=3 => monotonic_nanos(),
                _ => return Ok(EINVAL),
            };
            let memory = memory(&mut caller)?;
            Ok(if write(memory.data_mut(&mut caller), time as u32, &nanos.to_le_bytes()) { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut caller: Caller<'_, StoreState>, id: i32, resolution: i32| -> wasmtime::Result<i32> {
            if !(0..=3).contains(&id) {
                return Ok(EINVAL);
            }
            let memory = memory(&mut caller)?;
            let ok = write(memory.data_mut(&mut caller), resolution as u32, &1000u64.to_le_bytes());
            Ok(if ok { SUCCESS } else { EFAULT })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut caller: Caller<'_, StoreState>, buf: i32, len: i32| -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            let (start, len) = (buf as u32 as usize, len as u32 as usize);
            match memory.data_mut(&mut caller).get_mut(start..start + len) {
                Some(target) => {
                    rand::thread_rng().fill_bytes(target);
                    Ok(SUCCESS)
                }
                None => Ok(EFAULT),
            }
        },
    )?;
    // Clock subscriptions only: the guest sleeps (without holding a thread) until the
    // earliest one; the event's deadline still ends it.
    linker.func_wrap_async(
        MODULE,
        "poll_oneoff",
        |mut caller: Caller<'_, StoreState>, (subs, events, count, nevents): (i32, i32, i32, i32)| {
            Box::new(async move {
                let memory = memory(&mut caller)?;
                let mut earliest: Option<(u64, Duration)> = None;
                {
                    let data = memory.data(&caller);
                    for i in 0..count.max(0) as usize {
                        let at = subs as u32 as usize + i * 48;
                        let Some(sub) = data.get(at..at + 48) else { return Ok(EFAULT) };
                        if sub[8] != 0 {
                            return Ok(ENOSYS);
                        }
                        let userdata = u64::from_le_bytes(sub[0..8].try_into().expect("8 bytes"));
                        let timeout = u64::from_le_bytes(sub[24..32].try_into().expect("8 bytes"));
                        let absolute = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes")) & 1 == 1;
                        let wait = if absolute {
                            Duration::from_nanos(timeout.saturating_sub(monotonic_nanos()))
                        } else {
                            Duration::from_nanos(timeout)
                        };
                        if earliest.is_none_or(|(_, best)| wait < best) {
                            earliest = Some((userdata, wait));
                        }
                    }
                }
                let Some((userdata, wait)) = earliest else { return Ok(EINVAL) };
                tokio::time::sleep(wait).await;
                let mut event = [0u8; 32];
                event[0..8].copy_from_slice(&userdata.to_le_bytes());
                let data = memory.data_mut(&mut caller);
                let ok = write(data, events as u32, &event) && write(data, nevents as u32, &1u32.to_le_bytes());
                Ok(if ok { SUCCESS } else { EFAULT })
            })
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_: Caller<'_, StoreState>| -> i32 { SUCCESS })?;
    linker.func_wrap(MODULE, "proc_exit", |_: Caller<'_, StoreState>, code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(GuestExit(code)))
    })?;
    Ok(())
}

/// The functions [`add_to_linker`] defines.
const DEFINED: [&str; 17] = [
    "fd_write",
    "fd_read",
    "fd_close",
    "fd_seek",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "environ_sizes_get",
    "args_sizes_get",
    "environ_get",
    "args_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "sched_yield",
    "proc_exit",
    "poll_oneoff",
];

/// Every function of WASI preview 1.
const PREVIEW1: [&str; 46] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Monotonic nanoseconds since the first call in this process.
fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The `wasi_snapshot_preview1` imports of `module` that `linker` lacks, each defined as a
/// function answering `ENOSYS` (or trapping, when its type has no errno result). Returns
/// whether any was added.
pub(crate) fn stub_missing(linker: &mut Linker<StoreState>, module: &Module) -> wasmtime::Result<bool> {
    let mut added = false;
    for import in module.imports() {
        if import.module() != MODULE {
            continue;
        }
        let Some(ty) = import.ty().func().cloned() else { continue };
        if DEFINED.contains(&import.name()) || !PREVIEW1.contains(&import.name()) {
            // Defined, or no preview 1 function at all: linking refuses the latter.
            continue;
        }
        let name = import.name().to_owned();
        let errno = ty.results().len() == 1 && matches!(ty.results().next(), Some(ValType::I32));
        linker.func_new(MODULE, import.name(), ty, move |_, _, results| {
            if errno {
                results[0] = Val::I32(ENOSYS);
                Ok(())
            } else {
                Err(wasmtime::Error::msg(format!("WASI function `{name}` is not available")))
            }
        })?;
        added = true;
    }
    Ok(added)
}
