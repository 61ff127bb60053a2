import Glibc
import RCAgentCore
import RCAgentDaemon

/// What the agent gives back after a burst of connections: the allocator's free memory
/// (``MallocTrim``) and the pages of code and read-only data that nothing is using (``CleanFilePages``).
public struct AgentMemoryRelease: MemoryReleasing {
    private let cleanFilePages = CleanFilePages()

    /// Call once the process has started (``CleanFilePages`` remembers the mappings there are now).
    public init() {}

    public func releaseFreeMemory() {
        MallocTrim().releaseFreeMemory()
        cleanFilePages.releaseFreeMemory()
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
/// data of the executable and of the shared libraries loaded with it (`madvise(MADV_DONTNEED)` on
/// each `r-xp` or `r--p` file mapping that existed when this value was made and whose `Anonymous`
/// and `Swap` in `/proc/self/smaps` are both 0). What runs next maps its pages again from the page
/// cache, with minor faults.
///
/// Why: the kernel maps a file in windows around each page touched (more with large folios), so
/// start-up, the commands' code and the error paths a burst went through stay resident for the
/// agent's life: most of its RSS once the heap is small (docs/ARCHITECTURE.md, "What a process
/// loads at start"). Dropping such a page is what the kernel's own reclaim does with it.
///
/// What keeps it safe:
/// - Every page of a picked mapping is the file's. A page the process wrote to (RELRO, relocated
///   and then made read-only; a breakpoint a debugger or uprobe placed) is a private copy, counted
///   in `Anonymous` while resident and in `Swap` once swapped out; its mapping is left whole.
/// - Only mappings made before this value: the executable and the libraries loaded with it, which
///   are never unmapped, so an address range read from smaps cannot have become something else
///   (a library loaded later, a file mapped and unmapped, heap) by the time of the `madvise`.
public struct CleanFilePages: MemoryReleasing {
    /// The read-only file mappings when this value was made.
    private let lasting: Set<Range<UInt>>

    public init() {
        lasting = Set(Self.readOnlyFileMappings(smaps: Self.read("/proc/self/maps")).map(\.range))
    }

    public func releaseFreeMemory() {
        for mapping in Self.readOnlyFileMappings(smaps: Self.read("/proc/self/smaps"))
        where mapping.clean && lasting.contains(mapping.range) {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: mapping.range.lowerBound), mapping.range.count, MADV_DONTNEED)
        }
    }

    private static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return (try? FileDescriptorIO.read(fd, upTo: 8 << 20)) ?? []
    }

    /// The `r-xp` and `r--p` file mappings in a `/proc/PID/smaps` (or `maps`: none is then clean),
    /// and whether none of each one's pages was written (`Anonymous` and `Swap` both 0 kB).
    static func readOnlyFileMappings(smaps: [UInt8]) -> [(range: Range<UInt>, clean: Bool)] {
        var mappings: [(range: Range<UInt>, clean: Bool)] = []
        // The current mapping's fields still to be seen as 0 (nil: not a candidate).
        var pending: (range: Range<UInt>, anonymous: Bool?, swap: Bool?)?
        func close() {
            if let current = pending { mappings.append((current.range, current.anonymous == true && current.swap == true)) }
            pending = nil
        }
        for line in smaps.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.last == UInt8(ascii: ":") {
                let zero = fields.count >= 2 && fields[1].elementsEqual("0".utf8)
                if first.elementsEqual("Anonymous:".utf8) { pending?.anonymous = zero }
                if first.elementsEqual("Swap:".utf8) { pending?.swap = zero }
                continue
            }
            // start-end perms offset dev inode path
            close()
            guard fields.count >= 6, fields[1].elementsEqual("r-xp".utf8) || fields[1].elementsEqual("r--p".utf8),
                !fields[4].elementsEqual("0".utf8)
            else { continue }
            let bounds = first.split(separator: UInt8(ascii: "-"))
            guard bounds.count == 2, let start = UInt(String(decoding: bounds[0], as: UTF8.self), radix: 16),
                let end = UInt(String(decoding: bounds[1], as: UTF8.self), radix: 16), start < end
            else { continue }
            pending = (start..<end, nil, nil)
        }
        close()
        return mappings
    }
}
