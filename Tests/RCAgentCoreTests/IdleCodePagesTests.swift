import Foundation
import Testing

@testable import RCAgentLive

#if canImport(Glibc)
import Glibc
#endif

/// The agent's own code pages go when it gives memory back: only the executable's code, and the
/// process runs on.
@Suite struct IdleCodePagesTests {
    @Test func onlyTheExecutablesCodeIsPicked() {
        let maps = """
            55d0a0000000-55d0a0200000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            55d0a0200000-55d0a1000000 r-xp 00200000 fd:01 1234                       /usr/bin/rc-agent
            55d0a1000000-55d0a1100000 rw-p 00e00000 fd:01 1234                       /usr/bin/rc-agent
            55d0a2000000-55d0a2001000 r-xp 00000000 fd:01 12345                      /usr/bin/other
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/libc.so.6
            7f0000200000-7f0000300000 rw-p 00000000 00:00 0
            7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
            """
        #expect(IdleCodePages.codeRanges(maps: Array(maps.utf8), inode: 1234) == [0x55d0_a020_0000..<0x55d0_a100_0000])
        #expect(IdleCodePages.codeRanges(maps: Array(maps.utf8), inode: 4321).isEmpty)
    }

    /// In this process: most of the test binary's resident code is unmapped, and what runs next
    /// maps its pages again (this test goes on running).
    @Test func residentCodeShrinksAndTheProcessRunsOn() throws {
        var executable = stat()
        try #require(stat("/proc/self/exe", &executable) == 0)
        let before = Self.residentCodeKiB(inode: UInt64(executable.st_ino))
        #expect(before > 1024, "\(before) KiB of code resident")
        IdleCodePages().releaseFreeMemory()
        let after = Self.residentCodeKiB(inode: UInt64(executable.st_ino))
        #expect(after < before / 2, "\(before) → \(after) KiB")
        #expect(Self.residentCodeKiB(inode: UInt64(executable.st_ino)) > 0)
    }

    /// The `Rss` of this process's `r-xp` mappings of `inode`, from /proc/self/smaps.
    private static func residentCodeKiB(inode: UInt64) -> Int {
        let smaps = (try? String(contentsOfFile: "/proc/self/smaps", encoding: .utf8)) ?? ""
        var total = 0
        var counting = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                counting = fields[1] == "r-xp" && UInt64(fields[4]) == inode
            } else if counting, fields.first == "Rss:", fields.count >= 2, let kib = Int(fields[1]) {
                total += kib
            }
        }
        return total
    }
}
