import Foundation
@testable import Lab
import Testing

/// A lab's state directory (state.json, logs, the control socket) is the
/// user's own and closed to others, also when it existed before `up`.
struct StateDirectoryTests {
    static func scratch() throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("wl-state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? NSNumber)?.intValue ?? -1
    }

    @Test func aNewDirectoryIsClosedToOthers() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try LabStore(root: root).save(LabState(lab: "wlsd", file: "t.yaml"))
        #expect(Self.mode("\(root)/wlsd") == 0o700)
    }

    @Test func anOpenDirectoryThatExistedIsClosed() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/wlsd", withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        try LabStore(root: root).save(LabState(lab: "wlsd", file: "t.yaml"))
        #expect(Self.mode("\(root)/wlsd") == 0o700)
    }

    @Test(.enabled(if: getuid() == 0, "chown needs root"))
    func anotherUsersDirectoryIsRefused() throws {
        let root = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: "\(root)/wlsd", withIntermediateDirectories: false)
        #expect(chown("\(root)/wlsd", 65534, 65534) == 0)
        #expect {
            try LabStore(root: root).save(LabState(lab: "wlsd", file: "t.yaml"))
        } throws: { "\($0)".contains("belongs to uid 65534, not to this user") }
        #expect(!FileManager.default.fileExists(atPath: "\(root)/wlsd/state.json"))
    }
}
