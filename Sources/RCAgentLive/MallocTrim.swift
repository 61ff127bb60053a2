import Glibc
import RCAgentDaemon

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
