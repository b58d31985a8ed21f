//! The BPF events source: one `PERF_COUNT_SW_DUMMY` software event per online
//! CPU with `bpf_event` and `ksymbol` set, each with its mmap'd ring, all in
//! one epoll set. The kernel writes a record into the ring of the CPU a
//! program is loaded or freed on, for every program on the host (Linux 5.1+).
//! Opening needs CAP_PERFMON (or CAP_SYS_ADMIN); reading the rings needs
//! nothing, so `serve` opens them before it drops its capabilities.
/// The CPUs online now, as the rings were opened for.
pub use super::calibrate::online_cpus;
use std::{
    ffi::c_void,
    os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use perf_event_open_sys::{
    bindings::{
        perf_event_attr, perf_event_mmap_page, PERF_COUNT_SW_DUMMY, PERF_FLAG_FD_CLOEXEC,
        PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_TYPE_SOFTWARE,
    },
    perf_event_open,
};
use rustix::{
    event::epoll,
    mm::{mmap, munmap, MapFlags, ProtFlags},
};

use super::perf_records::header;

/// Data pages per CPU ring (a power of two): 64 KiB, about 500 loads in a
/// burst between two reads. Within perf_event_mlock_kb's default per CPU, so
/// an unprivileged user with only CAP_PERFMON can map it.
pub const DEFAULT_DATA_PAGES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("listing the online CPUs failed: {0}")]
    Cpus(std::io::Error),
    #[error("perf_event_open (bpf_event) on CPU {cpu} failed: {cause}; events need Linux 5.1+ and CAP_PERFMON (or perf_event_paranoid allowing it)")]
    Open { cpu: u32, cause: std::io::Error },
    #[error("mapping the events ring of CPU {cpu} failed: {cause}; raise perf_event_mlock_kb or RLIMIT_MEMLOCK")]
    Map { cpu: u32, cause: std::io::Error },
    #[error("setting up epoll for the events rings failed: {0}")]
    Epoll(std::io::Error),
    #[error("the ring size must be a power of two pages, not {0}")]
    RingSize(usize),
}

/// One CPU's ring: the metadata page, then `data_size` bytes of records.
struct Ring {
    fd: OwnedFd,
    base: NonNull<c_void>,
    len: usize,
    data_size: usize,
}

// SAFETY: the mapping is owned by the Ring alone (unmapped on drop) and is
// only touched through `&mut self`; the kernel side synchronises through
// data_head/data_tail as below.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` is exactly the mapping made in `open_ring`,
        // unmapped once; nothing borrows it beyond `&mut self`.
        let _ = unsafe { munmap(self.base.as_ptr(), self.len) };
    }
}

impl Ring {
    fn page(&self) -> *mut perf_event_mmap_page {
        self.base.as_ptr().cast()
    }

    /// Copies every whole record out of the ring into `out` (one record per
    /// entry) and gives the space back to the kernel.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) {
        let page = self.page();
        // SAFETY: the metadata page is mapped read-write for the ring's life;
        // data_head/data_tail are naturally aligned u64s the kernel updates
        // concurrently, hence atomics (the Acquire pairs with the kernel's
        // smp_wmb before it moves data_head).
        let (head, tail) = unsafe {
            let head = AtomicU64::from_ptr(&raw mut (*page).data_head).load(Ordering::Acquire);
            let tail = AtomicU64::from_ptr(&raw mut (*page).data_tail).load(Ordering::Relaxed);
            (head, tail)
        };
        let data_len = self.data_size as u64;
        let mut at = tail;
        while head - at >= super::perf_records::HEADER_SIZE as u64 {
            let mut header_bytes = [0; super::perf_records::HEADER_SIZE];
            self.copy_out(at, &mut header_bytes);
            let Some((_, size)) = header(&header_bytes) else {
                break;
            };
            // A zero or oversized record would mean a corrupt ring: start over at head.
            if size < header_bytes.len() || (size as u64) > head - at || (size as u64) > data_len {
                at = head;
                break;
            }
            let mut record = vec![0; size];
            self.copy_out(at, &mut record);
            out.push(record);
            at += size as u64;
        }
        // SAFETY: as above; the Release orders our reads of the records
        // before the kernel may overwrite them.
        unsafe {
            AtomicU64::from_ptr(&raw mut (*page).data_tail).store(at, Ordering::Release);
        }
    }

    /// Copies `out.len()` bytes at ring position `at` (wrapping at the end).
    fn copy_out(&self, at: u64, out: &mut [u8]) {
        let start = (at % self.data_size as u64) as usize;
        let first = out.len().min(self.data_size - start);
        let page_size = rustix::param::page_size();
        // SAFETY: the data area is `data_size` bytes from one page past
        // `base`; `start + first <= data_size` and `out.len() - first <=
        // start`, so both copies stay inside it, and `out` is our own buffer.
        unsafe {
            let data = self.base.as_ptr().cast::<u8>().add(page_size);
            std::ptr::copy_nonoverlapping(data.add(start), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

/// The per-CPU rings of BPF load/unload events and the epoll set over them.
pub struct ProgEventRings {
    rings: Vec<Ring>,
    epoll: OwnedFd,
    /// The CPUs with a ring: those online at open.
    cpus: Vec<u32>,
}

impl ProgEventRings {
    /// Opens one event per online CPU with `data_pages` (a power of two) of ring.
    pub fn open(data_pages: usize) -> Result<Self, EventsError> {
        if !data_pages.is_power_of_two() {
            return Err(EventsError::RingSize(data_pages));
        }
        let epoll =
            epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| EventsError::Epoll(e.into()))?;
        let mut rings = Vec::new();
        let cpus = super::calibrate::online_cpus().map_err(EventsError::Cpus)?;
        for &cpu in &cpus {
            let ring = open_ring(cpu, data_pages)?;
            epoll::add(
                &epoll,
                &ring.fd,
                epoll::EventData::new_u64(u64::from(cpu)),
                epoll::EventFlags::IN,
            )
            .map_err(|e| EventsError::Epoll(e.into()))?;
            rings.push(ring);
        }
        Ok(Self { rings, epoll, cpus })
    }

    /// The CPUs with a ring (online at open): a CPU onlined later has none,
    /// and opening one then would need the CAP_PERFMON `serve` dropped.
    pub fn cpus(&self) -> &[u32] {
        &self.cpus
    }

    /// Readable when any ring has records (for tokio's `AsyncFd`).
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }

    /// Takes the pending wake-ups off the epoll set without blocking, so a
    /// later record wakes it again.
    pub fn clear_wakeups(&self) {
        let mut events = Vec::with_capacity(self.rings.len().max(1));
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let _ = epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut events),
            Some(&zero),
        );
    }

    /// Every record now in any ring, one `Vec` per CPU, each in the CPU's order.
    pub fn drain(&mut self) -> Vec<Vec<Vec<u8>>> {
        self.rings
            .iter_mut()
            .map(|ring| {
                let mut records = Vec::new();
                ring.drain(&mut records);
                records
            })
            .collect()
    }
}

fn open_ring(cpu: u32, data_pages: usize) -> Result<Ring, EventsError> {
    let mut attr = perf_event_attr {
        type_: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config: u64::from(PERF_COUNT_SW_DUMMY),
        sample_type: u64::from(PERF_SAMPLE_TID | PERF_SAMPLE_TIME),
        ..Default::default()
    };
    attr.set_bpf_event(1);
    attr.set_ksymbol(1);
    attr.set_sample_id_all(1);
    // Boot time: ordered across CPUs and convertible to wall time.
    attr.set_use_clockid(1);
    attr.clockid = libc::CLOCK_BOOTTIME;
    // A wake-up per record: events are rare and wanted at once. Side-band
    // records never count towards wakeup_events (samples only); a watermark
    // of one byte wakes the reader for each (without it, at half a ring).
    attr.set_watermark(1);
    attr.__bindgen_anon_2.wakeup_watermark = 1;
    let cpu_arg = i32::try_from(cpu).unwrap_or(i32::MAX);
    // SAFETY: `attr` is a fully initialised perf_event_attr whose size field
    // is its own size; a dummy software event only produces side-band records.
    let fd = unsafe { perf_event_open(&mut attr, -1, cpu_arg, -1, PERF_FLAG_FD_CLOEXEC.into()) };
    if fd < 0 {
        return Err(EventsError::Open {
            cpu,
            cause: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: perf_event_open returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let page_size = rustix::param::page_size();
    let len = page_size * (1 + data_pages);
    // SAFETY: a fresh shared mapping of the perf fd of the size the kernel
    // requires (1 + 2^n pages); owned and unmapped by the Ring.
    let base = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| EventsError::Map {
        cpu,
        cause: e.into(),
    })?;
    let base = NonNull::new(base).ok_or(EventsError::Map {
        cpu,
        cause: std::io::Error::other("mmap returned null"),
    })?;
    Ok(Ring {
        fd,
        base,
        len,
        data_size: page_size * data_pages,
    })
}
