// What wirelab ships beside its verbs, from the built binary (no root): `--version`.
import Foundation
import Testing
import WirelabCommands

@Suite struct CommandLinePackagingTests {
    @Test func versionPrintsTheVersionAndExitsZero() throws {
        let r = try Harness.wl("--version")
        #expect(r.status == 0, "\(r.combined)")
        #expect(r.stdout == WirelabVersion.number + "\n")
        #expect(r.stderr.isEmpty)
        #expect(WirelabVersion.number.split(separator: ".").count == 3)
    }
}
