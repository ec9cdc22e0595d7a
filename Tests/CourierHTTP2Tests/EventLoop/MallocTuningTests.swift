import CCourierLinux
import Testing

@testable import CourierHTTP2

#if canImport(Glibc)
import Glibc
#endif

/// Whether malloc maps a fresh region for an allocation of `bytes` (glibc counts them in `hblks`).
private func isMapped(_ bytes: Int) -> Bool {
    let before = mallinfo2().hblks
    let pointer = malloc(bytes)
    defer { free(pointer) }
    return mallinfo2().hblks > before
}

/// Whether the process allocates with glibc's malloc: a sanitizer's allocator (ThreadSanitizer,
/// AddressSanitizer) replaces it, and `mallinfo2` then reports nothing. glibc maps 64 MiB always (its largest
/// mmap threshold is 32 MiB).
private let glibcMallocInUse = isMapped(64 << 20)

@Suite("glibc's malloc, set for large messages")
struct MallocTuningTests {

    /// Fails without the tuning: glibc maps a 1 MiB allocation (its threshold starts at 128 KiB, and rises
    /// only after such a block is freed), and 16 MiB always.
    @Test(
        "Once applied, allocations up to 8 MiB come from the arenas; larger ones are still mapped",
        .enabled(if: glibcMallocInUse, "a sanitizer's allocator replaces glibc's malloc")
    )
    func thresholds() throws {
        try #require(getenv("GLIBC_TUNABLES") == nil, "the process chose its own malloc settings")
        MallocTuning.applyOnce()
        #expect(MallocTuning.applied)
        #expect(!isMapped(1 << 20))
        #expect(!isMapped(6 << 20))
        #expect(isMapped(16 << 20))
        MallocTuning.applyOnce()  // idempotent
        #expect(MallocTuning.applied)
    }
}
