internal import CCourierLinux

#if canImport(Glibc)
internal import Glibc
#endif

/// glibc's malloc, set for a process that moves large messages: allocations up to 8 MiB come from the
/// arenas and are reused, instead of each being mapped, faulted in page by page, and unmapped again.
///
/// glibc maps every allocation above its mmap threshold (128 KiB, raised dynamically to the largest size
/// freed so far) and trims an arena's top above its trim threshold (twice that). A server that receives and
/// sends 1 MiB messages — the request decoded into a `Data`, the response built by the handler — kept crossing
/// both, and spent a third of its CPU in page faults and `munmap` (benchmark (c): 535 req/s against 1,293
/// with the thresholds fixed at 8 MiB, the same binary in the same run; RSS 24 MiB both; see
/// DesignNotes/Performance.md). 8 MiB covers gRPC's default 4 MiB message limit with room for framing.
///
/// Applied once per process, by the first HTTP/2 server or client transport that starts with
/// ``HTTP2ServerTransport/Configuration/tunesMalloc`` (or the client's) set, which is the default. Not
/// applied when `GLIBC_TUNABLES` names a malloc tunable: the process's own choice wins. Process-wide by
/// nature: it changes how the whole process's large allocations behave, which is why it can be turned off.
enum MallocTuning {
    /// The mmap and trim thresholds set.
    static let thresholdBytes: Int32 = 8 << 20

    /// Whether the thresholds were set (false: not glibc, `GLIBC_TUNABLES` chose, or `mallopt` refused).
    static var applied: Bool { once }

    private static let once: Bool = {
        #if canImport(Glibc)
        if let tunables = getenv("GLIBC_TUNABLES"), String(cString: tunables).contains("glibc.malloc.") {
            return false
        }
        // Setting either turns glibc's dynamic adjustment of both off.
        let mmap = mallopt(CCourierLinux_M_MMAP_THRESHOLD, thresholdBytes)
        let trim = mallopt(CCourierLinux_M_TRIM_THRESHOLD, thresholdBytes)
        return mmap == 1 && trim == 1
        #else
        return false
        #endif
    }()

    /// Sets the thresholds, the first time only (thread-safe: a lazy global).
    static func applyOnce() {
        _ = once
    }
}
