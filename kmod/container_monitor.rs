// SPDX-License-Identifier: GPL-2.0

//! `container_monitor`: memory limits of containers, tracked and enforced in the kernel.
//!
//! The supervisor registers each container's init (host PID, soft and hard RSS limits, id) on
//! the misc device `/dev/container_monitor`. A delayed work item scans every
//! `scan_interval_ms`: one pass over the host's processes, each mapped to its container (the
//! PID namespace whose init was registered), summing the file, anon and shmem pages of each
//! distinct address space. Crossing the soft limit is logged once; crossing the hard limit
//! sends SIGKILL to the container's init and removes the entry. Each event is also queued as a
//! fixed-size record for `read(2)` on the file that registered the container.
//!
//! The ioctl ABI is `proto/src/kmod_abi.rs`, compiled here from the same file as userspace
//! uses; `docs/kmod-abi.md` describes it.

use kernel::{
    bindings,
    ffi::{c_int, c_void},
    fs::{File, Kiocb},
    iov::IovIterDest,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::BStr,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};

/// The ioctl ABI, compiled from the very file `proto` exports to userspace (public so that
/// its public items are reachable, as `unreachable_pub` wants).
#[path = "../proto/src/kmod_abi.rs"]
pub mod abi;
mod events;
mod layout;
mod mmcache;
mod monitor;
mod pid;
mod scan;

use abi::{MonitorEvent, MONITOR_EVENT_SIZE};
use events::EventQueue;
use monitor::Monitor;

module! {
    type: ContainerMonitor,
    name: "container_monitor",
    authors: ["engine developers"],
    description: "Per-container RSS limits: soft warning, hard SIGKILL",
    license: "GPL",
    params: {
        scan_interval_ms: u32 {
            default: 200,
            description: "Scan period in milliseconds (at least 1)",
        },
    },
}

/// `KERN_INFO "[container_monitor] %pA"`: the seed module's line prefix (instead of
/// `pr_info!`'s `container_monitor: `), which the userspace backend writes too.
static LOG_FORMAT: &[u8] = b"\x016[container_monitor] %pA\0";

/// Prints one line to the kernel log with the `[container_monitor] ` prefix.
pub(crate) fn log_line(args: core::fmt::Arguments<'_>) {
    // SAFETY: `LOG_FORMAT` is NUL-terminated and has a single conversion, `%pA`, whose argument
    // must point to a `core::fmt::Arguments` (vsprintf hands it to `rust_fmt_argument`); `args`
    // outlives the call.
    unsafe {
        bindings::_printk(
            LOG_FORMAT.as_ptr().cast(),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
}

/// `log!("...\n", args)`: [`log_line`] with the kernel's `fmt!` (which also formats kernel
/// types such as `BStr`).
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log_line(::kernel::prelude::fmt!($($arg)*))
    };
}
pub(crate) use log;

/// Name of the misc device, also its node under `/dev` (devtmpfs gives it mode 0600).
const DEVICE_NAME: &CStr = c"container_monitor";

/// The module: the shared monitor state and the misc device that exposes it.
#[pin_data(PinnedDrop)]
struct ContainerMonitor {
    /// Registered last, deregistered first (declaration order), so `open` always finds
    /// `monitor` initialised.
    #[pin]
    miscdev: MiscDeviceRegistration<OpenFile>,
    monitor: Arc<Monitor>,
}

impl kernel::InPlaceModule for ContainerMonitor {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let interval_ms = module_parameters::scan_interval_ms.value();
        let monitor = if interval_ms == 0 {
            pr_err!("scan_interval_ms must be at least 1\n");
            Err(EINVAL)
        } else {
            layout::check().and_then(|()| Monitor::new(interval_ms))
        };
        let options = MiscDeviceOptions { name: DEVICE_NAME };
        try_pin_init!(Self {
            monitor: monitor?,
            miscdev <- MiscDeviceRegistration::register(options),
        })
        .pin_chain(|_| {
            log!("Module loaded. Device: /dev/container_monitor\n");
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for ContainerMonitor {
    fn drop(self: Pin<&mut Self>) {
        // No file is open (each holds a module reference), so nothing registers any more:
        // stop the scan, then free what is left.
        self.monitor.stop();
        let (scans, exact, failed) = self.monitor.scan_counts();
        log!(
            "Scans: {}, {} with an exact re-read near a limit\n",
            scans,
            exact
        );
        if failed > 0 {
            log!("Failed scans: {} (out of memory)\n", failed);
        }
        let freed = self.monitor.clear();
        if freed > 0 {
            log!("Freed {} entries still registered\n", freed);
        }
        log!("Module unloaded.\n");
    }
}

/// What an open file of the device holds.
struct OpenFile {
    monitor: Arc<Monitor>,
    /// Event records of the containers registered through this file.
    events: Arc<EventQueue>,
}

#[vtable]
impl MiscDevice for OpenFile {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        // SAFETY: `capable` only inspects the current task's credentials.
        if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) } {
            return Err(EPERM);
        }
        let misc = core::ptr::from_ref(misc).cast_mut();
        // SAFETY: the only `MiscDeviceRegistration<OpenFile>` is the `miscdev` field of the
        // pinned module struct, which `misc_open` keeps alive (it holds a module reference)
        // for the duration of this call; `monitor` was initialised before `miscdev`.
        let module = unsafe { &*kernel::container_of!(misc, ContainerMonitor, miscdev) };
        let file = OpenFile {
            monitor: module.monitor.clone(),
            events: EventQueue::new()?,
        };
        Ok(KBox::pin(file, GFP_KERNEL)?)
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        // SAFETY: `ki_filp` of the kiocb of a running read is a valid, open file.
        // (Raw field pointers, so no alignment is assumed beyond the fields' own.)
        let flags = unsafe {
            let filp = core::ptr::read(&raw const (*kiocb.as_raw()).ki_filp);
            core::ptr::read(&raw const (*filp).f_flags)
        };
        let nonblock = flags & bindings::O_NONBLOCK != 0;
        let me = kiocb.file();
        let mut batch = [events::EMPTY; 8];
        let want = (iov.len() / MONITOR_EVENT_SIZE).min(batch.len());
        if want == 0 {
            return Err(EINVAL);
        }
        loop {
            let turn = me.events.wait_turn(nonblock)?;
            let (peek, n) = me.events.peek(&turn, &mut batch[..want]);
            if n == 0 {
                // Another reader took the records between the wait and the turn.
                continue;
            }
            // Records are removed only once they reached user space (a fault loses none).
            let mut copied = 0;
            for event in &batch[..n] {
                let bytes = event.to_bytes();
                if iov.copy_to_iter(&bytes) != bytes.len() {
                    break;
                }
                copied += 1;
            }
            me.events.commit(&turn, &peek, copied);
            if copied == 0 {
                return Err(EFAULT);
            }
            return Ok(copied * MONITOR_EVENT_SIZE);
        }
    }

    fn ioctl(me: Pin<&OpenFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let arg = UserPtr::from_addr(arg);
        match cmd {
            abi::MONITOR_REGISTER => me.register(arg)?,
            abi::MONITOR_UNREGISTER => me.unregister(arg)?,
            abi::MONITOR_QUERY => me.query(arg)?,
            abi::MONITOR_QUERY_ALL => me.query_all(arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

impl OpenFile {
    fn register(&self, arg: UserPtr) -> Result {
        let mut raw = [0u8; abi::MONITOR_REQUEST_SIZE];
        UserSlice::new(arg, raw.len())
            .reader()
            .read_slice(&mut raw)?;
        let request = abi::MonitorRequest::from_bytes(&raw);
        Monitor::register(&self.monitor, &request, &self.events)
    }

    fn unregister(&self, arg: UserPtr) -> Result {
        let mut raw = [0u8; abi::MONITOR_REQUEST_SIZE];
        UserSlice::new(arg, raw.len())
            .reader()
            .read_slice(&mut raw)?;
        let request = abi::MonitorRequest::from_bytes(&raw);
        self.monitor.unregister(&request, &self.events)
    }

    fn query(&self, arg: UserPtr) -> Result {
        let (mut reader, mut writer) = UserSlice::new(arg, abi::MONITOR_QUERY_SIZE).reader_writer();
        let mut raw = [0u8; abi::MONITOR_QUERY_SIZE];
        reader.read_slice(&mut raw)?;
        let mut query = abi::MonitorQuery::from_bytes(&raw);
        query.rss_bytes = self.monitor.rss_of(query.pid)?;
        writer.write_slice(&query.to_bytes())
    }
}

/// Records one `MONITOR_QUERY_ALL` call fills at most (16 bytes each: 1 MiB, allocated with
/// kvmalloc and `__GFP_NOWARN`: a failure is `ENOMEM`, not a warning); `count` still tells
/// the caller how many there are.
const QUERY_ALL_MAX: usize = 65536;

impl OpenFile {
    fn query_all(&self, arg: UserPtr) -> Result {
        let (mut reader, mut writer) =
            UserSlice::new(arg, abi::MONITOR_QUERY_ALL_SIZE).reader_writer();
        let mut raw = [0u8; abi::MONITOR_QUERY_ALL_SIZE];
        reader.read_slice(&mut raw)?;
        let mut query = abi::MonitorQueryAll::from_bytes(&raw);
        let room = (query.capacity as usize).min(QUERY_ALL_MAX);
        let mut found = KVVec::new();
        let answer = self
            .monitor
            .rss_all(&self.events, query.generation, room, &mut found)?;
        // The records as bytes, copied out in one go.
        let size = found.len() * abi::MONITOR_QUERY_SIZE;
        let mut bytes = KVVec::with_capacity(size, GFP_KERNEL | __GFP_NOWARN)?;
        for &(pid, rss_bytes) in found.iter() {
            let record = abi::MonitorQuery {
                pid,
                reserved: 0,
                rss_bytes,
            };
            // Cannot fail: room reserved above.
            bytes.extend_from_slice(&record.to_bytes(), GFP_KERNEL | __GFP_NOWARN)?;
        }
        let records = usize::try_from(query.records).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(records), bytes.len())
            .writer()
            .write_slice(&bytes)?;
        query.count = u32::try_from(answer.count).unwrap_or(u32::MAX);
        query.generation = answer.generation;
        query.pending_events = u32::try_from(self.events.pending()).unwrap_or(u32::MAX);
        writer.write_slice(&query.to_bytes())
    }
}

/// The id of a record or request as printable text (bytes before the NUL, or all 32).
pub(crate) fn id_text(field: &[u8; abi::CONTAINER_ID_LEN]) -> &BStr {
    BStr::from_bytes(abi::id_bytes(field).unwrap_or(field))
}

/// An event record.
pub(crate) fn event(kind: u32, pid: i32, rss: u64, limit: u64, id: &[u8; 32]) -> MonitorEvent {
    MonitorEvent {
        kind,
        pid,
        rss_bytes: rss,
        limit_bytes: limit,
        container_id: *id,
    }
}
