// What a drill's load saw, live (client processes in the hosts' namespaces)
// or simulated (host models on the virtual clock): the one input the drill
// report is computed from, so `drill`, `check` and `sim` report alike.

/// Raw observations of one load run. Times are seconds since the load started.
public struct LoadObservations: Codable, Sendable, Equatable {
    /// One HTTP request of a request loop (a new connection each).
    public struct Request: Codable, Sendable, Equatable {
        /// The host the client ran on.
        public var host: String
        /// The client's index on that host.
        public var client: Int
        public var start: Double
        /// When the answer (or the failure) came.
        public var end: Double
        public var answered: Bool
        /// The answering server's name (the built-in server answers with it).
        public var answeredBy: String?
        public init(host: String, client: Int, start: Double, end: Double, answered: Bool, answeredBy: String?) {
            self.host = host
            self.client = client
            self.start = start
            self.end = end
            self.answered = answered
            self.answeredBy = answeredBy
        }
    }

    /// One long-lived TCP connection exchanging a message every interval.
    public struct Stream: Codable, Sendable, Equatable {
        public var host: String
        public var stream: Int
        /// When it was established (nil: never).
        public var established: Double?
        /// When it was lost (reset, or a message unanswered within the
        /// request timeout); nil when it lived to the end of the load.
        public var lost: Double?
        /// Messages answered.
        public var answered: Int
        /// The longest time between two answers.
        public var longestGap: Double
        public var answeredBy: String?
        public init(host: String, stream: Int, established: Double?, lost: Double?, answered: Int, longestGap: Double,
                    answeredBy: String?) {
            self.host = host
            self.stream = stream
            self.established = established
            self.lost = lost
            self.answered = answered
            self.longestGap = longestGap
            self.answeredBy = answeredBy
        }
    }

    public var requests: [Request]
    public var streams: [Stream]
    /// How long the load ran.
    public var duration: Double

    public init(requests: [Request] = [], streams: [Stream] = [], duration: Double) {
        self.requests = requests
        self.streams = streams
        self.duration = duration
    }
}
