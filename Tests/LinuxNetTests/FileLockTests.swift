import Foundation
import LinuxNet
import Testing

/// (Exclusivity: OSCallTests.aFileLockIsExclusive.) A lab's lock file is removed by `down` while the lock is held; whoever
/// locks the path next gets a new file, never the removed one.
struct FileLockTests {
    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("wl-lock-\(UUID().uuidString)").path
    }

    @Test func removingTheFileWhileHeldLetsTheNextLockTakeANewFile() throws {
        let path = Self.path()
        defer { unlink(path) }
        let first = try #require(try FileLock.acquire(path))
        try first.removeFile()
        #expect(!FileManager.default.fileExists(atPath: path))
        try first.removeFile()  // already gone: fine
        // The removed file's lock is still held, but nobody can open it any
        // more: the next lock is on a new file, and that one is exclusive.
        let second = try #require(try FileLock.acquire(path))
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(try FileLock.acquire(path) == nil)
        withExtendedLifetime((first, second)) {}
    }
}
