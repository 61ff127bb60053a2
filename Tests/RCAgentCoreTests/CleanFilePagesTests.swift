import Foundation
import Testing

@testable import RCAgentLive

#if canImport(Glibc)
import Glibc
#endif

/// Read-only file pages go when the agent gives memory back: only mappings none of whose pages it
/// wrote, and the process runs on.
@Suite struct CleanFilePagesTests {
    /// Code and read-only data of the executable and of libraries are clean; never RELRO
    /// (relocated: anonymous pages, or swapped ones), a page a debugger wrote into, writable or
    /// anonymous mappings, the vDSO. A mapping missing either count is not clean.
    @Test func onlyUnwrittenReadOnlyFileMappingsAreClean() {
        let smaps = """
            55d0a0000000-55d0a0200000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Size:               1024 kB
            Rss:                 512 kB
            Anonymous:             0 kB
            Swap:                  0 kB
            VmFlags: rd mr mw me
            55d0a0200000-55d0a1000000 r-xp 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             0 kB
            Swap:                  0 kB
            55d0a1000000-55d0a1100000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             12 kB
            Swap:                  0 kB
            55d0a1100000-55d0a1180000 r--p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             0 kB
            Swap:                  8 kB
            55d0a1180000-55d0a1200000 rw-p 00000000 fd:01 1234                       /usr/bin/rc-agent
            Anonymous:             0 kB
            Swap:                  0 kB
            7f0000000000-7f0000100000 r-xp 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/lib c.so.6
            Anonymous:             0 kB
            Swap:                  0 kB
            7f0000100000-7f0000110000 r-xp 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             4 kB
            Swap:                  0 kB
            7f0000110000-7f0000120000 r--p 00000000 fd:01 999                        /usr/lib/x86_64-linux-gnu/libc.so.6
            Anonymous:             0 kB
            7f0000200000-7f0000300000 r--p 00000000 00:00 0
            Anonymous:             0 kB
            Swap:                  0 kB
            7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
            Anonymous:             0 kB
            Swap:                  0 kB
            """
        let mappings = CleanFilePages.readOnlyFileMappings(smaps: Array(smaps.utf8))
        #expect(mappings.map(\.range) == [
            0x55d0_a000_0000..<0x55d0_a020_0000, 0x55d0_a020_0000..<0x55d0_a100_0000,
            0x55d0_a100_0000..<0x55d0_a110_0000, 0x55d0_a110_0000..<0x55d0_a118_0000,
            0x7f00_0000_0000..<0x7f00_0010_0000, 0x7f00_0010_0000..<0x7f00_0011_0000,
            0x7f00_0011_0000..<0x7f00_0012_0000,
        ])
        #expect(mappings.map(\.clean) == [true, true, false, false, true, false, false])
    }

    /// A file mapped after the value was made is never touched, clean or not: by the time of the
    /// `madvise`, its range could be something else.
    @Test func aFileMappedLaterIsLeftAlone() throws {
        let release = CleanFilePages()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("clean-\(UUID().uuidString)").path
        try Data(repeating: 0x61, count: 256 << 10).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let mapped = try #require(mmap(nil, 256 << 10, PROT_READ, MAP_PRIVATE, fd, 0))
        defer { munmap(mapped, 256 << 10) }
        var sum = 0
        for page in stride(from: 0, to: 256 << 10, by: 4096) { sum += Int(mapped.load(fromByteOffset: page, as: UInt8.self)) }
        #expect(sum == 64 * 0x61)
        let address = UInt(bitPattern: mapped)
        let before = Self.residentKiB(mappingAt: address)
        #expect(before >= 256)
        release.releaseFreeMemory()
        #expect(Self.residentKiB(mappingAt: address) == before)
    }

    /// In this process: most of the test binary's resident code is unmapped, and what runs next
    /// maps its pages again (this test goes on running); written pages (RELRO) stay.
    @Test func residentCodeShrinksAndTheProcessRunsOn() throws {
        var executable = stat()
        try #require(stat("/proc/self/exe", &executable) == 0)
        let inode = UInt64(executable.st_ino)
        let release = CleanFilePages()
        let before = Self.resident(inode: inode)
        #expect(before.code > 1024, "\(before.code) KiB of code resident")
        #expect(before.written > 0, "the executable's RELRO: \(before)")
        release.releaseFreeMemory()
        let after = Self.resident(inode: inode)
        #expect(after.code < before.code / 2, "\(before.code) → \(after.code) KiB")
        #expect(after.written == before.written, "written read-only pages are kept: \(before) → \(after)")
        #expect(Self.resident(inode: inode).code > 0)
    }

    /// The `Rss` of the mapping that starts at `address`, from /proc/self/smaps, in KiB.
    private static func residentKiB(mappingAt address: UInt) -> Int {
        let smaps = Self.smaps()
        var current = false
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), !first.hasSuffix(":") {
                current = first.split(separator: "-").first.flatMap { UInt($0, radix: 16) } == address
            } else if current, fields.first == "Rss:", fields.count >= 2 {
                return Int(fields[1]) ?? 0
            }
        }
        return 0
    }

    /// From /proc/self/smaps, for the file with `inode`, in KiB: the `Rss` of its `r-xp` mappings
    /// (`code`) and of its `r--p` ones (`data`), and the `Anonymous` of the `r--p` ones (pages
    /// written before they were made read-only).
    private static func resident(inode: UInt64) -> (code: Int, data: Int, written: Int) {
        let smaps = Self.smaps()
        var code = 0
        var data = 0
        var written = 0
        var perms: Substring?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
                perms = UInt64(fields[4]) == inode ? fields[1] : nil
            } else if let kib = fields.count >= 2 ? Int(fields[1]) : nil {
                if perms == "r-xp", fields.first == "Rss:" { code += kib }
                if perms == "r--p", fields.first == "Rss:" { data += kib }
                if perms == "r--p", fields.first == "Anonymous:" { written += kib }
            }
        }
        return (code, data, written)
    }

    /// /proc/self/smaps whole (read until the end: one read of a proc file returns a page or so).
    private static func smaps() -> String {
        let fd = open("/proc/self/smaps", O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while case let count = read(fd, &buffer, buffer.count), count > 0 { bytes += buffer[0..<count] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
