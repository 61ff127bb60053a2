import Glibc
import RCAgentCore
import RCAgentDaemon

/// What the agent gives back after a burst of connections: the allocator's free memory
/// (``MallocTrim``) and the pages of code and read-only data that nothing is using (``CleanFilePages``).
public struct AgentMemoryRelease: MemoryReleasing {
    public init() {}

    public func releaseFreeMemory() {
        MallocTrim().releaseFreeMemory()
        CleanFilePages().releaseFreeMemory()
    }
}

/// glibc's `malloc_trim(0)`: every arena's free memory goes back to the system (the free pages
/// inside the heaps too, not only the top of each). A C library without it (musl) trims nothing.
public struct MallocTrim: MemoryReleasing {
    public init() {}

    public func releaseFreeMemory() {
        _ = mallocTrim?(0)
    }
}

// <malloc.h> is not part of Swift's Glibc module; a null handle is RTLD_DEFAULT.
private let mallocTrim = dlsym(nil, "malloc_trim").map {
    unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self)
}

/// Unmaps the pages of read-only files that this process has not written to: code and read-only
/// data of the executable and of the shared libraries (`madvise(MADV_DONTNEED)` on each `r-xp` or
/// `r--p` file mapping whose `Anonymous` in `/proc/self/smaps` is 0). What runs next maps its pages
/// again from the page cache, with minor faults.
///
/// Why: the kernel maps a file in windows around each page touched (more with large folios), so
/// start-up, the commands' code and the error paths a burst went through stay resident for the
/// agent's life: most of its RSS once the heap is small (docs/ARCHITECTURE.md, "What a process
/// loads at start"). Dropping such a page is what the kernel's own reclaim does with it: every
/// page of these mappings is the file's. A mapping with an anonymous page (RELRO, relocated and
/// then made read-only; a page a debugger or uprobe wrote a breakpoint into) is left whole. The
/// pages stay in the page cache, shared with every other process; nothing is read from disk again.
public struct CleanFilePages: MemoryReleasing {
    public init() {}

    public func releaseFreeMemory() {
        let fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard let smaps = try? FileDescriptorIO.read(fd, upTo: 8 << 20) else { return }
        for range in Self.cleanRanges(smaps: smaps) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, MADV_DONTNEED)
        }
    }

    /// The read-only file mappings (`r-xp`, `r--p`) in a `/proc/PID/smaps` none of whose pages
    /// this process has written (`Anonymous: 0 kB`): every page is the file's, and the kernel
    /// may drop them as it pleases. RELRO (relocated, then made read-only) has anonymous pages
    /// and is never picked.
    static func cleanRanges(smaps: [UInt8]) -> [Range<UInt>] {
        var ranges: [Range<UInt>] = []
        var candidate: Range<UInt>?
        for line in smaps.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.last == UInt8(ascii: ":") {
                if first.elementsEqual("Anonymous:".utf8), let range = candidate {
                    if fields.count >= 2, fields[1].elementsEqual("0".utf8) { ranges.append(range) }
                    candidate = nil
                }
                continue
            }
            // start-end perms offset dev inode path
            candidate = nil
            guard fields.count >= 6, fields[1].elementsEqual("r-xp".utf8) || fields[1].elementsEqual("r--p".utf8),
                !fields[4].elementsEqual("0".utf8)
            else { continue }
            let bounds = first.split(separator: UInt8(ascii: "-"))
            guard bounds.count == 2, let start = UInt(String(decoding: bounds[0], as: UTF8.self), radix: 16),
                let end = UInt(String(decoding: bounds[1], as: UTF8.self), radix: 16), start < end
            else { continue }
            candidate = start..<end
        }
        return ranges
    }
}
