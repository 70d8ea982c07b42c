// Drills (`drills:` in the topology file, DESIGN.md "Redundancy and
// scale-out"): a load run from named hosts, a timeline of fail/heal events
// and what the run must show. The resolved model only; the reader fills it,
// `wirelab drill`, `check` and `sim` run it.
import Wire

/// One drill: a load, a timeline of events while it runs, expectations.
public struct Drill: Sendable, Hashable {
    public var name: String
    public var load: DrillLoad
    /// In time order.
    public var events: [DrillEvent]
    public var expect: DrillExpectations
    public var location: SourceLocation

    public init(name: String, load: DrillLoad, events: [DrillEvent], expect: DrillExpectations, location: SourceLocation) {
        self.name = name
        self.load = load
        self.events = events
        self.expect = expect
        self.location = location
    }
}

/// The traffic a drill keeps up while its events happen.
public struct DrillLoad: Sendable, Hashable {
    /// Hosts the clients run on (each runs `clients` request loops and
    /// `streams` long-lived connections).
    public var from: [String]
    /// Where requests go: `http://ADDRESS[:PORT][/PATH]` from the file.
    public var address: IPv4Address
    public var port: Int
    public var path: String
    /// HTTP clients per host, each requesting in a loop (a new connection
    /// per request).
    public var clients: Int
    /// Long-lived TCP connections per host, each exchanging a message every
    /// `streamInterval`.
    public var streams: Int
    public var streamInterval: DurationSpec
    /// How long the load runs.
    public var duration: DurationSpec
    /// A request unanswered for this long failed.
    public var requestTimeout: DurationSpec
    /// A long-lived connection whose message stays unanswered this long is
    /// lost (longer than `requestTimeout`: TCP retransmits through short
    /// outages, and a stream that survives them is not lost).
    public var streamTimeout: DurationSpec

    public init(from: [String], address: IPv4Address, port: Int, path: String, clients: Int, streams: Int,
                streamInterval: DurationSpec, duration: DurationSpec, requestTimeout: DurationSpec,
                streamTimeout: DurationSpec = .seconds(2)) {
        self.from = from
        self.address = address
        self.port = port
        self.path = path
        self.clients = clients
        self.streams = streams
        self.streamInterval = streamInterval
        self.duration = duration
        self.requestTimeout = requestTimeout
        self.streamTimeout = streamTimeout
    }
}

/// `{ at: 5s, fail: lvs1 }` / `{ at: 12s, heal: lvs1:eth0 }`.
public struct DrillEvent: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable { case fail, heal }
    /// A whole node (power cut) or one link end (the link fails on both ends).
    public enum Target: Sendable, Hashable, CustomStringConvertible {
        case node(String)
        case link(Endpoint)
        public var description: String {
            switch self {
            case .node(let n): n
            case .link(let e): e.description
            }
        }
    }
    /// Since the load started.
    public var at: DurationSpec
    public var action: Action
    public var target: Target
    public var location: SourceLocation

    public init(at: DurationSpec, action: Action, target: Target, location: SourceLocation) {
        self.at = at
        self.action = action
        self.target = target
        self.location = location
    }
}

/// `expect:`; nil = not checked.
public struct DrillExpectations: Sendable, Hashable {
    /// The longest gap between answered requests after an event.
    public var maxInterruption: DurationSpec?
    public var maxFailedRequests: Int?
    /// Long-lived connections lost over the whole drill.
    public var establishedLost: Int?

    public init(maxInterruption: DurationSpec? = nil, maxFailedRequests: Int? = nil, establishedLost: Int? = nil) {
        self.maxInterruption = maxInterruption
        self.maxFailedRequests = maxFailedRequests
        self.establishedLost = establishedLost
    }
}
