//! ioctl ABI of `/dev/container_monitor` (x86_64).
//!
//! This file is the single definition of the ABI: the `proto` crate exports it to userspace and
//! the kernel module compiles the same file (`#[path]` include), so it uses only `core` and no
//! `unsafe`. Layouts follow the C header of the original module:
//!
//! ```c
//! struct monitor_request {            /* 56 bytes on x86_64 */
//!     pid_t pid;                      /* offset 0 */
//!     unsigned long soft_limit_bytes; /* offset 8 */
//!     unsigned long hard_limit_bytes; /* offset 16 */
//!     char container_id[32];          /* offset 24, NUL-terminated */
//! };
//! #define MONITOR_REGISTER   _IOW('M', 1, struct monitor_request)  /* 0x40384D01 */
//! #define MONITOR_UNREGISTER _IOW('M', 2, struct monitor_request)  /* 0x40384D02 */
//! ```
//!
//! Extensions (see `docs/kmod-abi.md`): [`MONITOR_QUERY`], [`MONITOR_QUERY_ALL`] and the
//! fixed-size [`MonitorEvent`] records returned by `read(2)`.

#![allow(dead_code)]

/// Longest container id, in bytes (without the NUL): the one id length limit of the whole
/// system. `proto::limits::validate_id` refuses longer ids, and the module refuses a
/// request whose [`CONTAINER_ID_LEN`]-byte field has no NUL.
pub const CONTAINER_ID_MAX_LEN: usize = 31;

/// Size of the NUL-terminated container id field, in bytes (`char container_id[32]` of the
/// C header): [`CONTAINER_ID_MAX_LEN`] bytes and the NUL.
pub const CONTAINER_ID_LEN: usize = CONTAINER_ID_MAX_LEN + 1;

/// ioctl "magic" type byte, `'M'`.
pub const MONITOR_IOC_MAGIC: u32 = b'M' as u32;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` from `include/uapi/asm-generic/ioctl.h`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
}

/// Size of [`MonitorRequest`] on the wire, in bytes.
pub const MONITOR_REQUEST_SIZE: usize = 56;
/// Size of [`MonitorQuery`] on the wire, in bytes.
pub const MONITOR_QUERY_SIZE: usize = 16;
/// Size of [`MonitorQueryAll`] on the wire, in bytes.
pub const MONITOR_QUERY_ALL_SIZE: usize = 32;
/// Size of one [`MonitorEvent`] record returned by `read(2)`, in bytes.
pub const MONITOR_EVENT_SIZE: usize = 56;

/// `_IOW('M', 1, struct monitor_request)`: start tracking a container.
pub const MONITOR_REGISTER: u32 = ioc(IOC_WRITE, MONITOR_IOC_MAGIC, 1, MONITOR_REQUEST_SIZE);
/// `_IOW('M', 2, struct monitor_request)`: stop tracking (only `pid` is read).
pub const MONITOR_UNREGISTER: u32 = ioc(IOC_WRITE, MONITOR_IOC_MAGIC, 2, MONITOR_REQUEST_SIZE);
/// `_IOWR('M', 3, struct monitor_query)`: last measured RSS of a registered container.
pub const MONITOR_QUERY: u32 = ioc(
    IOC_WRITE | IOC_READ,
    MONITOR_IOC_MAGIC,
    3,
    MONITOR_QUERY_SIZE,
);

/// `_IOWR('M', 4, struct monitor_query_all)`: the last measured RSS of the containers
/// registered through this open file whose RSS changed since a given scan, one
/// [`MonitorQuery`] record each, in one call.
pub const MONITOR_QUERY_ALL: u32 = ioc(
    IOC_WRITE | IOC_READ,
    MONITOR_IOC_MAGIC,
    4,
    MONITOR_QUERY_ALL_SIZE,
);

/// Event kind: the soft limit was crossed (once per entry).
pub const EVENT_SOFT_LIMIT: u32 = 1;
/// Event kind: the hard limit was crossed; SIGKILL was sent and the entry removed.
pub const EVENT_HARD_LIMIT_KILLED: u32 = 2;
/// Event kind: the container's init exited; the entry was removed.
pub const EVENT_GONE: u32 = 3;
/// Event kind (extension): the file's queue was full and dropped its oldest records; this
/// record comes before the records that followed the loss, `rss_bytes` holds how many were
/// dropped, and `pid`, `limit_bytes` and `container_id` are zero. Older readers ignore kinds
/// they do not know.
pub const EVENT_LOST: u32 = 4;

/// `struct monitor_request`: argument of [`MONITOR_REGISTER`] and [`MONITOR_UNREGISTER`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorRequest {
    /// Host PID of the container's init (`pid_t`).
    pub pid: i32,
    /// Soft RSS limit, in bytes (`unsigned long`).
    pub soft_limit_bytes: u64,
    /// Hard RSS limit, in bytes (`unsigned long`).
    pub hard_limit_bytes: u64,
    /// Container id, NUL-terminated.
    pub container_id: [u8; CONTAINER_ID_LEN],
}

/// `struct monitor_query`: argument of [`MONITOR_QUERY`]; the kernel fills `rss_bytes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MonitorQuery {
    /// Host PID of the registered init.
    pub pid: i32,
    /// Padding, zero.
    pub reserved: u32,
    /// Last measured RSS of the whole container, in bytes (0 before the first scan).
    pub rss_bytes: u64,
}

/// `struct monitor_query_all`: argument of [`MONITOR_QUERY_ALL`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MonitorQueryAll {
    /// User address of an array of `capacity` [`MonitorQuery`] records (16 bytes each) that
    /// the kernel fills (pid, zero, rss_bytes).
    pub records: u64,
    /// Room in `records`, in records.
    pub capacity: u32,
    /// Filled by the kernel: how many records matched. When it exceeds `capacity`, only the
    /// first `capacity` were written: call again with more room (and the same `generation`).
    pub count: u32,
    /// Filled by the kernel: event records waiting for `read(2)` on this file.
    pub pending_events: u32,
    /// Zero.
    pub reserved: u32,
    /// In: the `generation` of the last answer the caller took in whole, 0 for every
    /// container. Out: the generation (scan number) of this answer: only containers whose RSS
    /// changed in a scan after the given one are listed.
    pub generation: u64,
}

/// `struct monitor_event`: one record of `read(2)` on the device.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorEvent {
    /// [`EVENT_SOFT_LIMIT`], [`EVENT_HARD_LIMIT_KILLED`], [`EVENT_GONE`] or [`EVENT_LOST`].
    pub kind: u32,
    /// Host PID of the container's init.
    pub pid: i32,
    /// RSS measured when the event fired, in bytes; for [`EVENT_LOST`], the number of
    /// records lost.
    pub rss_bytes: u64,
    /// The limit crossed, in bytes (0 for [`EVENT_GONE`]).
    pub limit_bytes: u64,
    /// Container id, NUL-terminated.
    pub container_id: [u8; CONTAINER_ID_LEN],
}

const _: () = assert!(core::mem::size_of::<MonitorRequest>() == MONITOR_REQUEST_SIZE);
const _: () = assert!(core::mem::size_of::<MonitorQuery>() == MONITOR_QUERY_SIZE);
const _: () = assert!(core::mem::size_of::<MonitorQueryAll>() == MONITOR_QUERY_ALL_SIZE);
const _: () = assert!(core::mem::size_of::<MonitorEvent>() == MONITOR_EVENT_SIZE);

fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(w)
}

fn get_i32(b: &[u8], at: usize) -> i32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    i32::from_ne_bytes(w)
}

/// The id bytes before the first NUL, or `None` when the field has no NUL.
pub fn id_bytes(field: &[u8; CONTAINER_ID_LEN]) -> Option<&[u8]> {
    let end = field.iter().position(|&b| b == 0)?;
    Some(&field[..end])
}

/// Copies `id` into a NUL-terminated field; `None` if it does not fit
/// ([`CONTAINER_ID_MAX_LEN`] bytes at most) or contains a NUL.
pub fn id_field(id: &[u8]) -> Option<[u8; CONTAINER_ID_LEN]> {
    if id.len() > CONTAINER_ID_MAX_LEN || id.contains(&0) {
        return None;
    }
    let mut f = [0u8; CONTAINER_ID_LEN];
    f[..id.len()].copy_from_slice(id);
    Some(f)
}

impl MonitorRequest {
    /// The struct as the bytes the kernel copies (native endian, padding zeroed).
    pub fn to_bytes(&self) -> [u8; MONITOR_REQUEST_SIZE] {
        let mut b = [0u8; MONITOR_REQUEST_SIZE];
        b[0..4].copy_from_slice(&self.pid.to_ne_bytes());
        b[8..16].copy_from_slice(&self.soft_limit_bytes.to_ne_bytes());
        b[16..24].copy_from_slice(&self.hard_limit_bytes.to_ne_bytes());
        b[24..56].copy_from_slice(&self.container_id);
        b
    }

    /// Parses the bytes copied from userspace.
    pub fn from_bytes(b: &[u8; MONITOR_REQUEST_SIZE]) -> Self {
        let mut container_id = [0u8; CONTAINER_ID_LEN];
        container_id.copy_from_slice(&b[24..56]);
        Self {
            pid: get_i32(b, 0),
            soft_limit_bytes: get_u64(b, 8),
            hard_limit_bytes: get_u64(b, 16),
            container_id,
        }
    }
}

impl MonitorQuery {
    /// The struct as bytes (native endian).
    pub fn to_bytes(&self) -> [u8; MONITOR_QUERY_SIZE] {
        let mut b = [0u8; MONITOR_QUERY_SIZE];
        b[0..4].copy_from_slice(&self.pid.to_ne_bytes());
        b[4..8].copy_from_slice(&self.reserved.to_ne_bytes());
        b[8..16].copy_from_slice(&self.rss_bytes.to_ne_bytes());
        b
    }

    /// Parses the bytes.
    pub fn from_bytes(b: &[u8; MONITOR_QUERY_SIZE]) -> Self {
        Self {
            pid: get_i32(b, 0),
            reserved: get_i32(b, 4) as u32,
            rss_bytes: get_u64(b, 8),
        }
    }
}

impl MonitorQueryAll {
    /// The struct as bytes (native endian).
    pub fn to_bytes(&self) -> [u8; MONITOR_QUERY_ALL_SIZE] {
        let mut b = [0u8; MONITOR_QUERY_ALL_SIZE];
        b[0..8].copy_from_slice(&self.records.to_ne_bytes());
        b[8..12].copy_from_slice(&self.capacity.to_ne_bytes());
        b[12..16].copy_from_slice(&self.count.to_ne_bytes());
        b[16..20].copy_from_slice(&self.pending_events.to_ne_bytes());
        b[20..24].copy_from_slice(&self.reserved.to_ne_bytes());
        b[24..32].copy_from_slice(&self.generation.to_ne_bytes());
        b
    }

    /// Parses the bytes.
    pub fn from_bytes(b: &[u8; MONITOR_QUERY_ALL_SIZE]) -> Self {
        Self {
            records: get_u64(b, 0),
            capacity: get_i32(b, 8) as u32,
            count: get_i32(b, 12) as u32,
            pending_events: get_i32(b, 16) as u32,
            reserved: get_i32(b, 20) as u32,
            generation: get_u64(b, 24),
        }
    }
}

impl MonitorEvent {
    /// The record as bytes (native endian).
    pub fn to_bytes(&self) -> [u8; MONITOR_EVENT_SIZE] {
        let mut b = [0u8; MONITOR_EVENT_SIZE];
        b[0..4].copy_from_slice(&self.kind.to_ne_bytes());
        b[4..8].copy_from_slice(&self.pid.to_ne_bytes());
        b[8..16].copy_from_slice(&self.rss_bytes.to_ne_bytes());
        b[16..24].copy_from_slice(&self.limit_bytes.to_ne_bytes());
        b[24..56].copy_from_slice(&self.container_id);
        b
    }

    /// Parses one record.
    pub fn from_bytes(b: &[u8; MONITOR_EVENT_SIZE]) -> Self {
        let mut container_id = [0u8; CONTAINER_ID_LEN];
        container_id.copy_from_slice(&b[24..56]);
        Self {
            kind: get_i32(b, 0) as u32,
            pid: get_i32(b, 4),
            rss_bytes: get_u64(b, 8),
            limit_bytes: get_u64(b, 16),
            container_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_c_header() {
        assert_eq!(MONITOR_REGISTER, 0x4038_4D01);
        assert_eq!(MONITOR_UNREGISTER, 0x4038_4D02);
        assert_eq!(MONITOR_QUERY, 0xC010_4D03);
        assert_eq!(MONITOR_QUERY_ALL, 0xC020_4D04);
    }

    #[test]
    fn query_all_round_trip() {
        let q = MonitorQueryAll {
            records: 0x7fff_0000_1000,
            capacity: 1000,
            count: 1001,
            pending_events: 3,
            reserved: 0,
            generation: 77,
        };
        let b = q.to_bytes();
        assert_eq!(&b[8..12], &1000u32.to_ne_bytes());
        assert_eq!(MonitorQueryAll::from_bytes(&b), q);
        assert_eq!(core::mem::offset_of!(MonitorQueryAll, count), 12);
        assert_eq!(core::mem::offset_of!(MonitorQueryAll, pending_events), 16);
        assert_eq!(core::mem::offset_of!(MonitorQueryAll, generation), 24);
    }

    #[test]
    fn request_bytes_match_the_c_layout() {
        let r = MonitorRequest {
            pid: 8434,
            soft_limit_bytes: 41_943_040,
            hard_limit_bytes: 67_108_864,
            container_id: id_field(b"hog").unwrap(),
        };
        let b = r.to_bytes();
        assert_eq!(&b[0..4], &8434i32.to_ne_bytes());
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[24..28], b"hog\0");
        assert_eq!(MonitorRequest::from_bytes(&b), r);
        assert_eq!(core::mem::offset_of!(MonitorRequest, soft_limit_bytes), 8);
        assert_eq!(core::mem::offset_of!(MonitorRequest, container_id), 24);
    }

    #[test]
    fn id_field_rules() {
        assert_eq!(CONTAINER_ID_LEN, 32);
        assert!(id_field(&[b'x'; CONTAINER_ID_MAX_LEN]).is_some());
        assert!(id_field(&[b'x'; 31]).is_some());
        assert!(id_field(&[b'x'; 32]).is_none());
        assert_eq!(id_bytes(&[b'x'; 32]), None);
        assert_eq!(id_bytes(&id_field(b"ab").unwrap()), Some(&b"ab"[..]));
    }

    #[test]
    fn event_round_trip() {
        let e = MonitorEvent {
            kind: EVENT_HARD_LIMIT_KILLED,
            pid: 5,
            rss_bytes: 1,
            limit_bytes: 2,
            container_id: id_field(b"c").unwrap(),
        };
        assert_eq!(MonitorEvent::from_bytes(&e.to_bytes()), e);
    }
}
