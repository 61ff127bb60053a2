import Glibc
import RCAgentCore
import RCAgentDaemon

/// What the agent gives back after a burst of connections: the allocator's free memory
/// (``MallocTrim``) and the pages of its own code that nothing is running (``IdleCodePages``).
public struct AgentMemoryRelease: MemoryReleasing {
    public init() {}

    public func releaseFreeMemory() {
        MallocTrim().releaseFreeMemory()
        IdleCodePages().releaseFreeMemory()
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

/// Unmaps the executable's code from this process (`madvise(MADV_DONTNEED)` on its `r-xp`
/// mappings); the code that runs next maps its pages again from the page cache, with minor faults.
///
/// Why: the kernel maps code in windows around each page that runs, so start-up, the commands'
/// code and the error paths a burst went through stay resident for the agent's life: most of its
/// RSS once the heap is small (docs/ARCHITECTURE.md, "What a process loads at start"). The pages
/// stay in the page cache, shared with every other `rc-agent` process; nothing is read from disk
/// again. Only code is touched (never data, RELRO or the heap), and only the executable's own
/// (shared libraries are other processes' too). A breakpoint a debugger or uprobe placed in the
/// code is a private copy of its page and is dropped with it.
public struct IdleCodePages: MemoryReleasing {
    public init() {}

    public func releaseFreeMemory() {
        var executable = stat()
        guard stat("/proc/self/exe", &executable) == 0 else { return }
        let fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard let maps = try? FileDescriptorIO.read(fd, upTo: 1 << 20) else { return }
        for range in Self.codeRanges(maps: maps, inode: UInt64(executable.st_ino)) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: range.lowerBound), range.count, MADV_DONTNEED)
        }
    }

    /// The address ranges of the `r-xp` mappings of the file with `inode` in a `/proc/PID/maps`.
    static func codeRanges(maps: [UInt8], inode: UInt64) -> [Range<UInt>] {
        maps.split(separator: UInt8(ascii: "\n")).compactMap { line in
            // start-end perms offset dev inode path
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1].elementsEqual("r-xp".utf8),
                UInt64(String(decoding: fields[4], as: UTF8.self)) == inode
            else { return nil }
            let bounds = fields[0].split(separator: UInt8(ascii: "-"))
            guard bounds.count == 2, let start = UInt(String(decoding: bounds[0], as: UTF8.self), radix: 16),
                let end = UInt(String(decoding: bounds[1], as: UTF8.self), radix: 16), start < end
            else { return nil }
            return start..<end
        }
    }
}
