// The seam between the verifier and what runs the lab: the live lab
// (namespaces, veths, the Swift data plane) or the in-process simulator.
import Topology
import Wire

/// Drop counters by node, then by reason ("no-route", "malformed:truncated", …).
/// Nodes that count no drops (kernel hosts) are absent.
public typealias NodeDropCounters = [String: [String: UInt64]]

/// What checks and walks need from a running lab.
///
/// Call order: `start()`, any number of probes, `finish()` for the
/// observations, and `stop()` always (also after a failure; idempotent).
public protocol CheckBackend: AnyObject {
    var topology: ResolvedTopology { get }
    /// Where a human finds the capture of the run (nil if only in memory).
    var capturePath: String? { get }

    /// Brings the lab up with every link recorded.
    func start() throws
    /// Sends `probe.packet` from host `probe.from` as its kernel would send
    /// it through a raw IP socket (routed, ARPed and framed by the host).
    func send(_ probe: Probe) throws
    /// Sends an ICMP echo or UDP probe and waits up to `timeout` seconds for
    /// its echo to come back to the host. True if it did.
    func echo(_ probe: Probe, timeout: Double) throws -> Bool
    /// A TCP connection from host `from` to `to:port`; true if it was accepted.
    func connect(from: String, to: IPv4Address, port: Int, timeout: Double) throws -> Bool
    /// One HTTP GET from host `from`; the node that answered (the built-in
    /// server answers with its node name), or nil if none did.
    func http(from: String, host: IPv4Address, port: Int, path: String, timeout: Double) throws -> String?
    /// The data plane's drop counters now.
    func dropCounters() throws -> NodeDropCounters
    /// Every capture point with what it has recorded and lost so far
    /// (cumulative since `start`). Read before the probes and again after
    /// `finish()` (then: the final counters, as the capture was closed);
    /// what was lost in between makes capture-based verdicts inconclusive.
    /// Empty for a backend that never loses a frame.
    func captureCounters() throws -> [CapturePoint]
    /// Lets frames in flight arrive (live: real time; sim: run the clock).
    func settle(seconds: Double)
    /// Fails or heals a node (its power) or a link, as `wirelab fail`/`heal` do.
    func apply(_ action: DrillEvent.Action, to target: DrillEvent.Target) throws
    /// Stops recording and returns every frame that crossed every link
    /// (see `ObservationReader`). The lab may be gone afterwards.
    func finish() throws -> [PcapNGLink]
    /// Tears everything down. Safe to call more than once.
    func stop()
}
