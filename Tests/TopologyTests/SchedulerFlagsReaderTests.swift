// `flags:` and `sloppy:` on a service: what the reader makes of them (the
// broken spellings are Fixtures/broken/50-scheduler-flags).
import Testing
import Wire
@testable import Topology

@Suite struct SchedulerFlagsReaderTests {
    @Test func flagsAndSloppyResolve() throws {
        let t = try loadGood("active-active.yaml")
        let lvs1 = try t[node: "lvs1"], lvs2 = try t[node: "lvs2"]
        #expect(lvs1.services[0].scheduler == .mh)
        #expect(lvs1.services[0].flags == [.mhPort, .mhFallback])
        #expect(lvs1.services[0].sloppy)
        #expect(lvs1.services[1].flags == [.shPort] && !lvs1.services[1].sloppy)
        #expect(lvs2.services[1].flags == [.shFallback])
    }

    @Test func absentKeysMeanNoFlagsAndNotSloppy() throws {
        let t = try loadGood("directors.yaml")
        for s in try t[node: "lvs1"].services {
            #expect(s.flags.isEmpty && !s.sloppy)
        }
    }

    /// A flag of the other hashing scheduler points at its twin; a flag on a
    /// scheduler that does not hash says so.
    @Test func aFlagOfAnotherSchedulerIsNamedWithWhatWouldBeRight() {
        func errors(_ service: String) -> [String] {
            let yaml = """
            name: f
            nodes:
              lvs:
                kind: director
                interfaces: { eth0: { ip: 10.0.0.2/24 } }
                services: [ \(service) ]
              rs1:
                kind: host
                interfaces: { eth0: { ip: 10.0.0.11/24 } }
            links:
              - [ lvs:eth0, rs1:eth0 ]
            """
            do { _ = try TopologyLoader.load(yaml: yaml, file: "f.yaml"); return [] } catch let e as TopologyErrors {
                return e.errors.map(\.description)
            } catch { return ["\(error)"] }
        }
        let sh = errors("{ vip: 10.0.0.100, port: 80, scheduler: sh, flags: [ mh-port ], reals: [ { ip: 10.0.0.11 } ] }")
        #expect(sh.count == 1)
        #expect(sh.first?.contains("scheduler flag 'mh-port' is for scheduler mh, but this service's scheduler is sh") == true)
        #expect(sh.first?.contains("write 'sh-port'") == true)
        let wlc = errors("{ vip: 10.0.0.100, port: 80, flags: [ mh-fallback ], reals: [ { ip: 10.0.0.11 } ] }")
        #expect(wlc.first?.contains("wlc takes no flags") == true)
        #expect(wlc.first?.contains("set scheduler: mh") == true)
        #expect(errors("{ vip: 10.0.0.100, port: 80, scheduler: mh, flags: [], reals: [ { ip: 10.0.0.11 } ] }").isEmpty)
    }

    @Test func everyFlagBelongsToAHashingScheduler() {
        #expect(SchedulerFlag.flags(of: .mh) == [.mhPort, .mhFallback])
        #expect(SchedulerFlag.flags(of: .sh) == [.shPort, .shFallback])
        for k in SchedulerKind.allCases where k != .mh && k != .sh { #expect(SchedulerFlag.flags(of: k).isEmpty) }
    }
}
