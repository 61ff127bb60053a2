import Foundation
import Testing

@testable import RCAgentLive

#if canImport(Glibc)
import Glibc
#endif

/// Read-only file pages go when the agent gives memory back: only mappings none of whose pages it
/// wrote, and the process runs on.
@Suite struct CleanFilePagesTests {
    /// Code and read-only data of the executable and of libraries, whole; never RELRO (anonymous
    /// pages: relocated), a page a debugger wrote into, writable or anonymous mappings, the vDSO.
    @Test func onlyUnwrittenReadOnlyFileMappingsArePicked() {
        let smaps = """
            55d0a0000000-55d0a0200000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Size:               1024 kB
            Rss:                 512 kB
            Anonymous:             0 kB
            VmFlags: rd mr mw me
            55d0a0200000-55d0a1000000 r-xp 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             0 kB
            55d0a1000000-55d0a1100000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             12 kB
            55d0a1100000-55d0a1200000 rw-p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             0 kB
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             0 kB
            7f0000100000-7f0000110000 r-xp 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             4 kB
            7f0000200000-7f0000300000 r--p 00000000 00:00 0
            Anonymous:             0 kB
            7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
            Anonymous:             0 kB
            """
        #expect(
            CleanFilePages.cleanRanges(smaps: Array(smaps.utf8)) == [
                0x55d0_a000_0000..<0x55d0_a020_0000, 0x55d0_a020_0000..<0x55d0_a100_0000,
                0x7f00_0000_0000..<0x7f00_0010_0000,
            ])
    }

    /// In this process: most of the test binary's resident code is unmapped, and what runs next
    /// maps its pages again (this test goes on running); written pages (RELRO) stay.
    @Test func residentCodeShrinksAndTheProcessRunsOn() throws {
        var executable = stat()
        try #require(stat("/proc/self/exe", &executable) == 0)
        let inode = UInt64(executable.st_ino)
        let before = Self.resident(inode: inode)
        #expect(before.code > 1024, "\(before.code) KiB of code resident")
        #expect(before.written > 0, "the executable's RELRO: \(before)")
        CleanFilePages().releaseFreeMemory()
        let after = Self.resident(inode: inode)
        #expect(after.code < before.code / 2, "\(before.code) → \(after.code) KiB")
        #expect(after.written == before.written, "written read-only pages are kept: \(before) → \(after)")
        #expect(Self.resident(inode: inode).code > 0)
    }

    /// From /proc/self/smaps, for the file with `inode`: the `Rss` of its `r-xp` mappings, and the
    /// `Anonymous` of its `r--p` ones (pages written before they were made read-only), in KiB.
    private static func resident(inode: UInt64) -> (code: Int, written: Int) {
        let smaps = (try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8)) ?? ""
        var code = 0
        var written = 0
        var perms: Substring?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                perms = UInt64(fields[4]) == inode ? fields[1] : nil
            } else if let kib = fields.count >= 2 ? Int(fields[1]) : nil {
                if perms == "r-xp", fields.first == "Rss:" { code += kib }
                if perms == "r--p", fields.first == "Anonymous:" { written += kib }
            }
        }
        return (code, written)
    }
}
