// A race-free program that ThreadSanitizer reports as racing: the evidence for dev/sanitizers/tsan.supp's
// `resume(returning:)` entry. A loop thread (an NSCondition-guarded queue, like Courier's event loops) resumes
// an UnsafeContinuation; the resumed task then calls a function whose frame reuses the task-allocator memory
// that the resume read, and TSan (Swift 6.3.1 on Linux) reports "data race" between resume(returning:) and
// that frame, though the runtime's resume orders them. Not part of the package; run it by hand:
//
//   swiftc -sanitize=thread -parse-as-library -o /tmp/repro dev/sanitizers/continuation-resume-repro.swift
//   /tmp/repro                                                           # a report, then "done"
//   TSAN_OPTIONS=suppressions=dev/sanitizers/tsan.supp /tmp/repro        # "done" only
import Foundation
import Synchronization

// A thread that runs closures handed to it (like an event loop), synchronised with a pthread mutex + cond.
final class Loop: @unchecked Sendable {
    private let lock = NSCondition()
    private var work: [() -> Void] = []
    init() {
        let t = Thread { [self] in
            while true {
                lock.lock()
                while work.isEmpty { lock.wait() }
                let items = work
                work.removeAll()
                lock.unlock()
                for item in items { item() }
            }
        }
        t.start()
    }
    func execute(_ body: @escaping () -> Void) {
        lock.lock()
        work.append(body)
        lock.signal()
        lock.unlock()
    }
}

@inline(never) func frame(_ n: Int) async -> Int {
    var local = [Int: Int]()
    for i in 0..<4 { local[i] = n &+ i }
    await Task.yield()
    return local.count
}

@main struct Main {
    static func main() async {
        let loop = Loop()
        var total = 0
        for i in 0..<20_000 {
            let v: [Int] = await withUnsafeContinuation { c in loop.execute { c.resume(returning: [i]) } }
            total &+= v[0]
            total &+= await frame(i)
        }
        print("done", total)
    }
}
