import Datapath
import Foundation
import LinuxNet
import Synchronization
import Topology
import Wire

/// The lab's data plane: one process per lab, started by `up` and stopped
/// by `down`. Opens one port per interface of every userspace node inside
/// that node's namespace and runs the elements over them in a batched
/// run-to-completion loop on ONE thread (the box has two cores, shared with
/// traffic generators); that thread sleeps in epoll_wait when the lab is idle.
/// A second thread records captures, a third answers the control socket.
// @unchecked: the control thread reaches the daemon only through `answer`,
// which takes `lock`, held by the datapath thread while it touches elements
// and ports; the capture recorder belongs to the capture thread.
public final class LabDaemon: @unchecked Sendable {
    let lab: String
    let store: LabStore
    let topology: ResolvedTopology
    let captureDirectory: String?
    var runtimes: [NodeRuntime] = []
    var recorder: CaptureRecorder?
    /// Held by the datapath thread while it touches elements and ports, and
    /// by the control thread while it reads their counters.
    let lock = NSLock()
    let started = Date()
    var captureThread: Thread?
    /// IPIP decapsulation on TUN real servers (their tcx links live as long
    /// as this daemon).
    var decapsulators: [TunnelDecapsulator] = []
    var checkers: [HealthChecker] = []
    /// One BGP thread per node with `bgp:` (see BGPController).
    var speakers: [BGPController] = []
    /// The pipe checker threads write a byte to when they queued health
    /// events; its read end is in the datapath thread's epoll set, so it
    /// wakes to apply them.
    var healthWake: WakePipe?
    /// The capture points' counters as the capture thread last read them
    /// (libpcap's can only be read there); `status` answers with them.
    let captureCounters = Mutex<[CapturePoint]?>(nil)
    /// One socket per userspace node, in its namespace, to read its ports'
    /// carrier (nil where it could not be opened).
    var linkWatchers: [CarrierWatch?] = []
    /// Carrier of each node's ports as last seen (true at start: `up` set
    /// both ends of every veth up); written by the datapath thread under `lock`.
    var carrier: [[Bool]] = []
    /// Ports whose last read saw no carrier while `carrier` still says up.
    var carrierLostOnce: [[Bool]] = []
    /// Ports seen with carrier at least once since the daemon started.
    var carrierSeen: [[Bool]] = []
    /// Carrier changes seen per node.
    var linkChanges: [UInt64] = []
    /// Per node: false while `wirelab fail` has cut its power — its ports'
    /// frames are discarded unseen and its element is not ticked, so it
    /// sends nothing (no goodbye). Written by the control thread, read by
    /// the datapath thread, both under `lock`.
    var powered: [Bool] = []
    /// XDP programs on the kernel ends of fast-path ports (`FastPathPeers`).
    var fastPathPeers: [XDPProgram] = []
    /// Nodes with the fast path, by index.
    var fastPathNodes: [Int] = []

    public init(lab: String, store: LabStore) throws {
        self.lab = lab
        self.store = store
        topology = try TopologyLoader.load(path: store.topologyCopyPath(lab: lab))
        // The state is the authority: `up` records a capture directory only
        // when capture is on — from the file, or forced (`wirelab check`).
        captureDirectory = try store.load(lab: lab).captureDirectory
    }

    /// Opens everything, announces readiness on the control socket, and runs
    /// until SIGTERM/SIGINT.
    public func run() throws {
        TerminationSignals.install()

        runtimes = try NodeRuntime.openAll(topology.nodes.filter { $0.kind != .host }, lab: lab, capture: captureDirectory != nil)
        let byName = Dictionary(runtimes.map { ($0.node.name, $0) }, uniquingKeysWith: { a, _ in a })
        fastPathNodes = runtimes.indices.filter { runtimes[$0].fastPath != nil }
        fastPathPeers = try FastPathPeers.attach(topology: topology, runtimes: runtimes, lab: lab)
        // A node failed before a restart of the daemon stays off.
        let failed = Set((try? store.load(lab: lab).failedNodes) ?? [])
        powered = runtimes.map { !failed.contains($0.node.name) }
        if let directory = captureDirectory {
            let recorder = try CaptureRecorder(directory: directory)
            try recorder.prepare(topology: topology, lab: lab, runtimes: byName)
            self.recorder = recorder
            captureCounters.withLock { $0 = recorder.capturePoints() }
            // From here on the recorder is the capture thread's (see `recordCaptures`).
            let thread = Thread { [unowned self] in self.recordCaptures() }
            thread.name = "captures"
            thread.start()
            captureThread = thread
        }
        try attachDecapsulation()
        openLinkWatchers()
        let wakePipe = try WakePipe(operation: "pipe for health checks")
        healthWake = wakePipe
        for (i, runtime) in runtimes.enumerated() where runtime.node.kind == .director {
            // A full pipe means the datapath thread is already due to wake.
            let checker = HealthChecker(node: runtime.node, namespace: runtime.namespace, runtimeIndex: i,
                                        wake: { wakePipe.wake() },
                                        log: { Self.log($0) })
            if !checker.isEmpty {
                Self.log("health checks of \(runtime.node.name): \(checker.targets.count) reals, from its kernel's interface addresses")
                checkers.append(checker)
            }
        }
        for (i, runtime) in runtimes.enumerated() where runtime.node.runsControlPlane {
            let router: Router? = { if case .router(let r) = runtime.forwarder { return r } else { return nil } }()
            let name = runtime.node.name
            let speaker = try BGPController(
                node: runtime.node, namespace: runtime.namespace, runtimeIndex: i,
                passivePeers: BGPController.passivePeers(of: runtime.node, in: topology),
                applyFIB: { [unowned self] change in
                    // The BGP thread, between the datapath thread's batches.
                    guard let router else { return }
                    self.lock.lock()
                    let entry = router.applyLearnedRoute(change)
                    self.syncFastPath(i)
                    self.lock.unlock()
                    if entry == nil, !change.nextHops.isEmpty {
                        Self.log("bgp: \(name): no next hop of \(change.prefix) is on a connected subnet; not installed")
                    }
                },
                applyStaticNextHops: { [unowned self] prefix, gateways in
                    guard let router else { return }
                    self.lock.lock()
                    router.useStaticNextHops(prefix, gateways)
                    self.syncFastPath(i)
                    self.lock.unlock()
                },
                log: { Self.log($0) })
            speakers.append(speaker)
        }
        let control = try ControlServer(path: store.controlSocketPath(lab: lab)) { [unowned self] request in
            self.answer(request)
        }
        control.start()
        defer { control.stop() }
        FileHandle.standardError.write("wirelab daemon: lab \(lab) ready: \(runtimes.count) nodes, \(runtimes.reduce(0) { $0 + $1.ports.count }) ports\n".data(using: .utf8)!)

        for checker in checkers { checker.start() }
        for speaker in speakers { speaker.start() }
        lock.lock(); updateServable(); lock.unlock()
        try runLoop()
        for speaker in speakers { speaker.stop() }
        for checker in checkers { checker.stop() }
        for decapsulator in decapsulators { decapsulator.close() }
        wakePipe.close()

        // The capture thread reads the nodes' capture rings: let it stop,
        // drain what is left in the rings, and only then close the nodes
        // (closing first freed a ring under a running consume, and lost the
        // last frames).
        if let recorder {
            while captureThread?.isFinished == false { Thread.sleep(forTimeInterval: 0.01) }
            let final = recorder.finish()
            captureCounters.withLock { $0 = final }
        }
        lock.lock()
        for program in fastPathPeers { program.close() }
        NodeRuntime.closeAll(runtimes)
        lock.unlock()
    }

    static func log(_ line: String) {
        FileHandle.standardError.write("wirelab daemon: \(line)\n".data(using: .utf8)!)
    }

    /// Loads the IPIP decapsulation onto the TUN real servers LabPlan names
    /// (one program per host, at tc ingress of each of its interfaces).
    func attachDecapsulation() throws {
        let plan = LabPlan(topology: topology, serveCommand: [])
        for d in plan.decapsulations {
            let decapsulator = try TunnelDecapsulator(hostAddresses: d.hostAddresses, vips: d.vips, tunnelSources: d.tunnelSources)
            do {
                try NetworkNamespace.run(d.namespace) {
                    for interface in d.interfaces { try decapsulator.attach(interface: interface) }
                }
            } catch {
                decapsulator.close()
                throw LabError("IPIP decapsulation on \(d.node): \(error)")
            }
            decapsulators.append(decapsulator)
            Self.log("IPIP decapsulation on \(d.node) (\(d.interfaces.joined(separator: ", "))) for \(d.vips.map(\.description).joined(separator: ", "))")
        }
    }

    /// Applies queued health changes to the directors (datapath thread,
    /// between batches, with `lock` held). Down: weight 0 and disabled (no
    /// new connections; existing ones drain); up: enabled, weight restored.
    func applyHealthEvents() {
        for checker in checkers {
            for event in checker.drain() {
                guard case .director(let director) = runtimes[event.runtime].forwarder else { continue }
                let t = event.target
                guard let id = director.realServer(t.real, port: t.realPort, service: t.vip, servicePort: t.servicePort,
                                                   proto: t.proto) else { continue }
                appliedHealth[Self.healthKey(event.runtime, t.vip, t.servicePort, t.real, t.realPort)] = event.healthy
                do {
                    if event.healthy {
                        try director.setEnabled(true, for: id)
                        try director.setWeight(t.weight, for: id)
                    } else {
                        try director.setWeight(0, for: id)
                        try director.setEnabled(false, for: id)
                    }
                } catch {
                    Self.log("health: applying \(event.healthy ? "up" : "down") to \(t.real):\(t.realPort): \(error)")
                }
            }
        }
    }

    /// Tells each director's BGP speaker which of its `announce:` prefixes
    /// it can serve: a prefix holding the VIP of a service with a real not
    /// failed by its health checks, and, where the VIP is in one of the
    /// director's VRRP groups, only while it is that group's master.
    /// Datapath thread, `lock` held; after health changes, VRRP transitions
    /// and every second. Allocates a little, only for directors with BGP,
    /// never per packet.
    func updateServable() {
        guard !speakers.isEmpty else { return }
        for speaker in speakers where runtimes[speaker.runtimeIndex].node.kind == .director {
            let n = speaker.runtimeIndex
            let runtime = runtimes[n]
            var masterVIPs = Set<IPv4Address>(), groupVIPs = Set<IPv4Address>()
            if let groups = runtime.forwarder.vrrpNode?.vrrp {
                for g in groups.instances {
                    groupVIPs.formUnion(g.configuration.vips)
                    if g.state == .master { masterVIPs.formUnion(g.configuration.vips) }
                }
            }
            var servable = Set<IPv4Prefix>()
            for prefix in speaker.spec?.announce ?? [] {
                let ok = runtime.node.services.contains { service in
                    guard prefix.contains(service.vip) else { return false }
                    if groupVIPs.contains(service.vip), !masterVIPs.contains(service.vip) { return false }
                    return service.reals.contains { real in
                        appliedHealth[Self.healthKey(n, service.vip, UInt16(service.port), real.ip, UInt16(real.port))] ?? true
                    }
                }
                if ok { servable.insert(prefix) }
            }
            speaker.setServable(powered[n] ? servable : [])
        }
    }

    // MARK: links

    func openLinkWatchers() {
        linkWatchers = runtimes.map { runtime in
            do { return try CarrierWatch(namespace: runtime.namespace) } catch {
                Self.log("links of \(runtime.node.name) not watched: \(error)")
                return nil
            }
        }
        carrier = runtimes.map { Array(repeating: true, count: $0.ports.count) }
        carrierLostOnce = runtimes.map { Array(repeating: false, count: $0.ports.count) }
        carrierSeen = carrierLostOnce
        linkChanges = Array(repeating: 0, count: runtimes.count)
        // The first read: which ports have carrier already.
        watchCarrier()
    }

    /// Reads every port's carrier and applies each change to the elements:
    /// a router drops the routes through a port without carrier (ECMP groups
    /// shrink to their live next hops) and restores them when it returns.
    /// Datapath thread, `lock` not held. Allocates nothing unless something
    /// changed (it runs four times a second while `bench forward` counts the
    /// daemon's mallocs); takes `lock` only then.
    func watchCarrier() {
        var n = 0
        while n < runtimes.count && n < linkWatchers.count && n < carrier.count {
            if let watcher = linkWatchers[n] {
                let interfaces = runtimes[n].node.interfaces
                var p = 0
                while p < carrier[n].count && p < interfaces.count {
                    // (Only this thread writes `carrier`, under `lock`, which `status` reads it under.)
                    if let up = watcher.hasCarrier(interfaces[p].name) {
                        // A port counts as lost only once it has been seen up
                        // (`up` brings the hosts' ends of the links up while the
                        // daemon starts), and when two reads in a row see it
                        // down: a router must not drop its routes for a blink.
                        if up { carrierSeen[n][p] = true }
                        // A bond member is lost at the first read: a failover
                        // costs little, and waiting a read (0.25 s) doubled
                        // the outage of a switch failure.
                        let member = interfaces[p].bond != nil
                        let lost = !up && carrierSeen[n][p] && carrier[n][p] && (carrierLostOnce[n][p] || member)
                        carrierLostOnce[n][p] = !up && carrierSeen[n][p] && carrier[n][p]
                        if lost || (up && !carrier[n][p]) {
                            lock.lock()
                            carrier[n][p] = up
                            applyCarrier(node: n, port: p, up: up)
                            lock.unlock()
                        }
                    }
                    p += 1
                }
            }
            n += 1
        }
    }

    /// One port's carrier change (`lock` held).
    func applyCarrier(node n: Int, port p: Int, up: Bool) {
        linkChanges[n] += 1
        let runtime = runtimes[n]
        // A port without carrier drops what it is given, and what waits in
        // its TX ring goes too: it must not go out when the link returns.
        runtime.links.pointee.set(p, up: up)
        if !up, p < runtime.ports.count {
            runtime.links.pointee.drops &+= UInt64(runtime.ports[p].discardPendingTransmit())
        }
        // A bond follows its members' carrier, powered or not (it is the
        // NIC's); the element sees only the bond's own changes.
        let change = runtime.bonds.map { $0.pointee.setCarrier(p, up: up) }
            ?? BondMap.Change(logical: p, carrier: up)
        let name = "\(runtime.node.name):\(runtime.node.interfaces[p].name)"
        // A node without power learns nothing; `setPowered` gives it the
        // carrier of every port when it comes back.
        guard n >= powered.count || powered[n] else {
            Self.log("link \(name) \(up ? "up" : "down (no carrier)") while its power is cut")
            return
        }
        let now = Self.monotonicNow()
        var applied = change.carrier.map {
            runtime.forwarder.carrierChanged(port: PortID(change.logical), up: $0, now: now, emit: &runtime.runner.emitter)
        } ?? ""
        if let failover = change.failover, let bonds = runtime.bonds, bonds.pointee.hasCarrier(logical: change.logical) {
            let bond = runtime.node.logicalInterfaces[change.logical]
            runtime.forwarder.bondFailedOver(port: PortID(change.logical), mac: bond.mac, addresses: bond.addresses.map { $0.address },
                                             emit: &runtime.runner.emitter)
            applied += "; bond \(bond.name) fails over from \(runtime.node.interfaces[failover.from].name) to \(runtime.node.interfaces[failover.to].name)"
        }
        var live = LivePorts(runtime)
        runtime.runner.drainEmitted(on: &live)
        Self.log("link \(name) \(up ? "up" : "down (no carrier)")\(applied)")
    }

    static func monotonicNow() -> Instant { Instant(nanoseconds: MonotonicClock.nanoseconds()) }

    // MARK: the data plane

    func runLoop() throws {
        struct PortRef { var node: Int; var port: Int }
        var refs: [PortRef] = []
        // epoll, not poll: a wait costs what is ready, not every port of the lab (EventSet).
        var fds = try EventSet()
        for (n, runtime) in runtimes.enumerated() {
            for (p, port) in runtime.ports.enumerated() {
                try fds.add(port.fd, .readable, token: refs.count)
                refs.append(PortRef(node: n, port: p))
            }
        }
        var batch = PortBatch(capacity: 64)
        // Tokens: the ports (index in `refs`), then each node's link events
        // (see `CarrierWatch`; linkSlots + node), then the read end of the
        // health checkers' wake pipe.
        let linkSlots = refs.count
        for (n, watcher) in linkWatchers.enumerated() {
            if let fd = watcher?.eventDescriptor, fd >= 0 { try fds.add(fd, .readable, token: linkSlots + n) }
        }
        let healthSlot = linkSlots + linkWatchers.count
        if let healthWake { try fds.add(healthWake.readDescriptor, .readable, token: healthSlot) }
        var nextTick = Self.monotonicNow().adding(seconds: 1)
        var nextLinkCheck = Self.monotonicNow()
        var pendingTransmit = false
        // Nodes with timers finer than the tick (VRRP groups).
        // Nodes with timers finer than the tick (VRRP, sync flushes), by index.
        let timerNodes = runtimes.indices.filter { runtimes[$0].forwarder.hasFineTimers }

        // After SIGTERM: every VRRP master resigns, then the loop runs on
        // briefly so this lab's switches and routers carry the priority-0
        // adverts to the peers.
        var stopAt: Instant?
        while true {
            if TerminationSignals.requested {
                if stopAt == nil {
                    stopAt = resignVRRP() ? Self.monotonicNow().adding(seconds: 0.15) : Self.monotonicNow()
                }
                if let stopAt, Self.monotonicNow() >= stopAt { break }
            }
            // Sleep until a frame arrives; wake soon if a TX kick is pending,
            // when an element timer is due, and at least four times a second
            // for the tick, carrier and the stop flag. A signal ends the wait
            // early (0); so does a failed wait, as a wake-up with nothing ready.
            var timeout: Int32 = pendingTransmit ? 1 : 250
            if !timerNodes.isEmpty, let due = earliestTimer(timerNodes) {
                let wait = due.nanoseconds &- min(due.nanoseconds, Self.monotonicNow().nanoseconds)
                timeout = min(timeout, Int32((wait + 999_999) / 1_000_000))   // rounded up: never wake early and spin
            }
            let ready = (try? fds.wait(timeout: timeout)) ?? 0
            let now = Self.monotonicNow()
            // Carrier, four times a second (one SIOCGIFFLAGS per port), and
            // at once when a node's namespace reports a link change.
            var linkEvent = false
            var healthEvent = false
            for i in 0..<ready {
                let token = fds.token(at: i)
                if token >= linkSlots && token < healthSlot && fds.returnedEvents(at: i).contains(.readable) {
                    if linkWatchers[token - linkSlots]?.drainEvents() == true { linkEvent = true }
                }
                if token == healthSlot && fds.returnedEvents(at: i).contains(.readable) { healthEvent = true }
            }
            if now >= nextLinkCheck || linkEvent {
                watchCarrier()
                nextLinkCheck = now.adding(seconds: 0.25)
            }
            lock.lock()
            if ready > 0 {
                // An error counts as readable: an AF_PACKET socket whose
                // interface goes down holds ENETDOWN, and epoll reports
                // POLLERR until a receive takes it — unread, every wait
                // returned at once (a core spun while a link was failed).
                for i in 0..<ready where fds.token(at: i) < refs.count && !fds.returnedEvents(at: i).isDisjoint(with: Self.inputEvents) {
                    let ref = refs[fds.token(at: i)]
                    let runtime = runtimes[ref.node]
                    let ports = runtime.ports
                    let port = runtime.ports[ref.port]
                    if !powered[ref.node] {
                        // Power cut: what arrives is lost, as on a dead box.
                        while port.receive(into: &batch) > 0 { port.release(&batch) }
                        continue
                    }
                    // A bond takes in frames on its active member only.
                    var ingress = ref.port
                    if let bonds = runtime.bonds {
                        guard let logical = bonds.pointee.receivePort(ref.port) else {
                            while true {
                                let count = port.receive(into: &batch)
                                if count == 0 { break }
                                bonds.pointee.backupDrops &+= UInt64(count)
                                port.release(&batch)
                            }
                            continue
                        }
                        ingress = logical
                    }
                    // Drain this port in bursts; cap bursts so one busy port
                    // cannot starve the others.
                    var bursts = 0
                    var given: UInt64 = 0
                    while bursts < 8 {
                        let count = port.receive(into: &batch)
                        if count == 0 { break }
                        given |= process(runtime, ports: ports, from: ingress, batch: &batch, now: now)
                        port.release(&batch)
                        bursts += 1
                    }
                    // Kick TX after every RX burst (a lone SYN must not wait
                    // in a half-full batch) — on the ports given frames.
                    flush(runtime, given)
                }
            }
            if healthEvent {
                healthWake?.drain()
                applyHealthEvents()
                updateServable()
            }
            if now >= nextTick {
                for (n, runtime) in runtimes.enumerated() where powered[n] {
                    tick(runtime, ports: runtime.ports, now: now)
                    for port in runtime.ports { port.flush() }
                }
                nextTick = now.adding(seconds: 1)
                updateServable()
            }
            for n in timerNodes where powered[n] {
                let runtime = runtimes[n]
                guard let due = runtime.forwarder.element.nextTimer, due <= now else { continue }
                var live = LivePorts(runtime)
                runtime.runner.fireTimers(runtime.forwarder.element, now: now, ports: &live)
                flush(runtime, live.given)
            }
            // (No array per wake-up.) A director's announcements follow its mastership.
            var transitions = false
            for n in timerNodes where logVRRPTransitions(of: runtimes[n]) { transitions = true }
            if transitions { updateServable() }
            // Whatever changed an element's state this round (timers,
            // carrier, health, VRRP) retires its fast-path entries now.
            for n in fastPathNodes { syncFastPath(n) }
            pendingTransmit = runtimes.contains { $0.ports.contains { $0.hasPendingTransmit } }
            if pendingTransmit { for runtime in runtimes { for port in runtime.ports { port.flush() } } }
            lock.unlock()
        }
    }

    /// Events that send the loop to a port's receive.
    static let inputEvents: PollEvents = [.readable, .error]

    /// Bit p of a port mask: port p was given frames (bit 63: port 63 or
    /// any above it).
    @inline(__always)
    static func bit(_ port: Int) -> UInt64 { 1 << UInt64(min(port, 63)) }

    /// Flushes the ports of `runtime` in MASK (see `bit`).
    @inline(__always)
    func flush(_ runtime: NodeRuntime, _ mask: UInt64) {
        guard mask != 0 else { return }
        for (p, port) in runtime.ports.enumerated() where mask & Self.bit(p) != 0 { port.flush() }
    }

    /// Runs the batch through the node's element; returns the mask of the
    /// ports given frames. The element's type is decided once per batch,
    /// so the per-frame call is a direct call to the concrete element; the
    /// runner is accessed once per batch, not per frame.
    @inline(__always)
    func process(_ runtime: NodeRuntime, ports: [AnyPacketPort], from portIndex: Int, batch: inout PortBatch,
                 now: Instant) -> UInt64 {
        withUnsafeMutablePointer(to: &runtime.runner) { runner in
            switch runtime.forwarder {
            case .learningSwitch(let element):
                return process(element, runner, ports: ports, links: runtime.links, bonds: runtime.bonds, fastPath: runtime.fastPath,
                               from: portIndex, batch: &batch, now: now)
            case .router(let element):
                return process(element, runner, ports: ports, links: runtime.links, bonds: runtime.bonds, fastPath: runtime.fastPath,
                               from: portIndex, batch: &batch, now: now)
            case .director(let element):
                return process(element, runner, ports: ports, links: runtime.links, bonds: runtime.bonds, fastPath: runtime.fastPath,
                               from: portIndex, batch: &batch, now: now)
            }
        }
    }

    @inline(__always)
    func process<E: Element>(_ element: E, _ runner: UnsafeMutablePointer<ElementRunner>, ports: [AnyPacketPort],
                             links: UnsafeMutablePointer<PortLinks>, bonds: UnsafeMutablePointer<BondMap>?,
                             fastPath: NodeFastPath?, from portIndex: Int, batch: inout PortBatch, now: Instant) -> UInt64 {
        let ingress = PortID(portIndex)
        var live = LivePorts(ports: ports, links: links, bonds: bonds)
        // The frames were written by the kernel's receive, often on another
        // CPU: start every frame's header line on its way before the first
        // is parsed, so the batch's misses overlap (perf put ~60 % of the
        // router's parse time on the first load of the frame).
        for i in 0..<batch.count { prefetchForWriting(batch.address(at: i)) }
        if E.prefetchesBatches {
            for stage in 0..<2 {
                for i in 0..<batch.count {
                    element.prefetch(UnsafeRawBufferPointer(start: batch.address(at: i), count: batch.length(at: i)), stage: stage)
                }
            }
        }
        for i in 0..<batch.count {
            let address = batch.address(at: i)
            let headroom = batch.headroom(at: i)
            let length = batch.length(at: i)
            var packet = PacketBuffer(base: address - headroom, capacity: headroom + length + batch.tailroom(at: i),
                                      offset: headroom, length: length)
            guard let fastPath else {
                runner.pointee.process(element, &packet, from: ingress, now: now, ports: &live)
                continue
            }
            // A fast-path node: the frame before the element (when its flow
            // has no entry yet) and after it make the flow's entry.
            fastPath.before(packet.readOnly, ingress: portIndex, generation: element.fastPathGeneration)
            let verdict = runner.pointee.process(element, &packet, from: ingress, now: now, ports: &live)
            if element.takeFastPathCacheable(), case .forward(let egress) = verdict {
                fastPath.after(packet.readOnly, ingress: portIndex, egress: Int(egress.rawValue), generation: element.fastPathGeneration)
            }
        }
        if let fastPath { fastPath.sync(generation: element.fastPathGeneration) }
        return live.given
    }

    /// Writes node N's fast-path generation if its element's changed. Under `lock`.
    @inline(__always)
    func syncFastPath(_ n: Int) {
        guard let fastPath = runtimes[n].fastPath else { return }
        fastPath.sync(generation: runtimes[n].forwarder.element.fastPathGeneration)
    }

    /// The earliest element timer of `runtimes`.
    /// The earliest timer of the powered nodes among `nodes`.
    func earliestTimer(_ nodes: [Int]) -> Instant? {
        var t: Instant?
        for n in nodes where powered[n] {
            if let due = runtimes[n].forwarder.element.nextTimer, t.map({ due < $0 }) ?? true { t = due }
        }
        return t
    }

    /// Logs every VRRP transition since the last call, with its reason;
    /// returns whether there was any (a director's announcements follow
    /// its mastership).
    @discardableResult
    func logVRRPTransitions(_ runtimes: [NodeRuntime]) -> Bool {
        var any = false
        for runtime in runtimes where logVRRPTransitions(of: runtime) { any = true }
        return any
    }

    @discardableResult
    func logVRRPTransitions(of runtime: NodeRuntime) -> Bool {
        guard let node = runtime.forwarder.vrrpNode, !node.vrrp.pending.isEmpty else { return false }
        for t in node.vrrp.takeTransitions() { Self.log("\(runtime.node.name): \(t)") }
        return true
    }

    /// `wirelab down` (SIGTERM): every master resigns with a priority-0
    /// advert, so its backup takes over after Skew_Time instead of
    /// Master_Down_Interval. Returns whether any node has VRRP groups (then
    /// the loop runs on a little to carry the adverts).
    func resignVRRP() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let now = Self.monotonicNow()
        var any = false
        for runtime in runtimes {
            guard let node = runtime.forwarder.vrrpNode, !node.vrrp.isEmpty else { continue }
            any = true
            node.vrrp.resign(now: now, emit: &runtime.runner.emitter)
            var live = LivePorts(runtime)
            runtime.runner.drainEmitted(on: &live)
            for port in runtime.ports { port.flush() }
            for t in node.vrrp.takeTransitions() { Self.log("\(runtime.node.name): \(t)") }
        }
        return any
    }

    /// Runs the element's timers and sends what they emitted; returns the
    /// mask of the ports given frames. PORTS are the runtime's (no
    /// allocation here: it runs every second).
    @discardableResult
    func tick(_ runtime: NodeRuntime, ports: [AnyPacketPort], now: Instant) -> UInt64 {
        // Before the element's timers: what the fast path carried refreshes
        // the element's state first (a busy connection must not expire).
        if let fastPath = runtime.fastPath {
            switch runtime.forwarder {
            case .learningSwitch(let e): fastPath.sweep(e, now: now)
            case .router(let e): fastPath.sweep(e, now: now)
            case .director(let e): fastPath.sweep(e, now: now)
            }
        }
        var live = LivePorts(ports: ports, links: runtime.links, bonds: runtime.bonds)
        runtime.runner.tick(runtime.forwarder.element, now: now, ports: &live)
        return live.given
    }

    // MARK: captures

    /// The capture thread: the only one that touches `recorder` until it
    /// ends (`run` finishes the recording after that).
    func recordCaptures() {
        guard let recorder else { return }
        var lastFlush = Date()
        var lastCounters = Date()
        let pause = Self.captureDrainPause()
        if pause > 0 { Self.log("captures drained every \(Int(pause * 1000)) ms (\(Self.captureDrainVariable))") }
        while !TerminationSignals.requested {
            var fds = PollSet()
            for fd in recorder.pollDescriptors { fds.add(fd, .readable) }
            _ = try? fds.wait(timeout: recorder.holdsFrames ? 10 : 200)
            recorder.drain()
            // Files are readable while the lab runs (checks read them).
            if Date().timeIntervalSince(lastFlush) > 0.2 {
                recorder.flush()
                lastFlush = Date()
            }
            // What was lost, for `status` and checks (libpcap's counters
            // can be read only on this thread).
            if Date().timeIntervalSince(lastCounters) > 0.05 {
                let points = recorder.capturePoints()
                captureCounters.withLock { $0 = points }
                lastCounters = Date()
            }
            // (In steps, so `down` does not wait out a long pause.)
            let resume = Date().addingTimeInterval(pause)
            while pause > 0 && Date() < resume && !TerminationSignals.requested { Thread.sleep(forTimeInterval: 0.02) }
        }
    }

    /// `WIRELAB_CAPTURE_DRAIN_MS`: the capture thread waits this long after
    /// each drain (default 0: it drains as soon as frames wait). With a
    /// small `WIRELAB_CAPTURE_RING_BYTES` it makes rings overflow on
    /// purpose, to rehearse capture loss.
    static let captureDrainVariable = "WIRELAB_CAPTURE_DRAIN_MS"

    static func captureDrainPause() -> Double {
        guard let text = ProcessInfo.processInfo.environment[captureDrainVariable], let ms = Double(text), ms > 0 else { return 0 }
        return min(ms, 10_000) / 1000
    }

    // MARK: control

    func answer(_ request: ControlRequest) -> Data {
        switch request.command {
        case "status":
            return (try? JSONEncoder().encode(status())) ?? Data("{}".utf8)
        case "lvs":
            return (try? JSONEncoder().encode(lvs())) ?? Data("{}".utf8)
        case "power":
            // `wirelab fail/heal NODE` for a userspace node: {"node": NAME, "on": "true"|"false"}.
            guard let name = request.args["node"], let on = request.args["on"].flatMap(Bool.init) else {
                return Data("{\"error\":\"power needs node and on (true or false)\"}".utf8)
            }
            guard setPowered(node: name, on: on) else {
                return Data("{\"error\":\"no userspace node \(name) in this data plane\"}".utf8)
            }
            return Data("{\"node\":\"\(name)\",\"powered\":\(on)}".utf8)
        default:
            return Data("{\"error\":\"unknown command \(request.command)\"}".utf8)
        }
    }

    /// Switches a userspace node's data plane off (power cut: frames
    /// discarded, no ticks, nothing sent) or back on with the state it had.
    /// The one place a node's power changes: an element that must know
    /// (VRRP: stop advertising without a priority-0 goodbye on a cut, start
    /// from Initialize on power-on) is told here. Returns false for an
    /// unknown node.
    @discardableResult
    public func setPowered(node name: String, on: Bool) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let n = runtimes.firstIndex(where: { $0.node.name == name }), n < powered.count else { return false }
        guard powered[n] != on else { return true }
        Self.log("node \(name) \(on ? "powered on" : "power cut: its data plane stops")")
        powered[n] = on
        // A power cut stops its VRRP groups without a word (no priority 0);
        // back on, it learns every port's carrier as it is now, and its
        // groups start from Initialize on the ports that have it.
        let runtime = runtimes[n]
        let now = Self.monotonicNow()
        if !on {
            runtime.forwarder.vrrpNode.map { $0.vrrp.stop(now: now) }
        } else {
            for p in 0..<(n < carrier.count ? min(carrier[n].count, runtime.logicalPortCount) : 0) {
                let up = runtime.bonds?.pointee.hasCarrier(logical: p) ?? carrier[n][p]
                runtime.forwarder.carrierChanged(port: PortID(p), up: up, now: now, emit: &runtime.runner.emitter)
            }
            var live = LivePorts(runtime)
            runtime.runner.drainEmitted(on: &live)
        }
        logVRRPTransitions([runtime])
        // Its fast path too: the kernel must not forward for a dead box.
        runtime.fastPath?.setEnabled(on, generation: runtime.forwarder.element.fastPathGeneration)
        // Its control plane dies with it: a director's health checks pause,
        // its BGP speaker falls silent.
        for checker in checkers where checker.runtimeIndex == n { checker.setPaused(!on) }
        for speaker in speakers where speaker.runtimeIndex == n { speaker.setPaused(!on) }
        return true
    }

    func lvs() -> LVSStatus {
        lock.lock()
        defer { lock.unlock() }
        var directors: [LVSStatus.Director] = []
        for (index, runtime) in runtimes.enumerated() {
            guard case .director(let director) = runtime.forwarder else { continue }
            let snapshot = director.snapshot()
            let services = snapshot.services.map { s in
                LVSStatus.Service(proto: s.proto.ipvsadmName, vip: s.address.description, port: Int(s.port),
                                  scheduler: s.scheduler.rawValue, flags: s.schedulerFlags.names(for: s.scheduler),
                                  sloppy: s.sloppy, mode: s.mode.rawValue, reals: s.reals.map { r in
                    LVSStatus.Real(address: r.address.description, port: Int(r.port), weight: r.weight, enabled: r.enabled,
                                   activeConnections: r.activeConnections, inactiveConnections: r.inactiveConnections,
                                   totalConnections: r.totalConnections,
                                   health: healthStatus(runtime: index, vip: s.address, port: s.port, real: r.address, realPort: r.port).map { $0.healthy ? "up" : "down" },
                                   healthError: healthStatus(runtime: index, vip: s.address, port: s.port, real: r.address, realPort: r.port)?.lastError)
                })
            }
            let sync = director.configuration.sync == nil ? nil : NodeForwarder.syncCounters(director)
            directors.append(.init(node: runtime.node.name, listing: snapshot.ipvsadmListing(), services: services, sync: sync,
                                   vrrp: VRRPGroupStatus.groups(of: runtime.forwarder, node: runtime.node, now: Self.monotonicNow())))
        }
        return LVSStatus(directors: directors)
    }

    /// Health as the director applies it (the checker's own status can be a
    /// moment ahead of the datapath thread): `lvs` never shows a real down
    /// whose weight is not yet 0. Caller holds `lock`.
    func healthStatus(runtime: Int, vip: IPv4Address, port: UInt16, real: IPv4Address, realPort: UInt16) -> HealthChecker.Status? {
        for checker in checkers where checker.runtimeIndex == runtime {
            if let i = checker.targets.firstIndex(where: { $0.vip == vip && $0.servicePort == port && $0.real == real && $0.realPort == realPort }) {
                var status = checker.status(of: i)
                status.healthy = appliedHealth[Self.healthKey(runtime, vip, port, real, realPort)] ?? true
                return status
            }
        }
        return nil
    }

    /// Health changes applied to the directors, by real (datapath thread, under `lock`).
    var appliedHealth: [String: Bool] = [:]

    static func healthKey(_ runtime: Int, _ vip: IPv4Address, _ port: UInt16, _ real: IPv4Address, _ realPort: UInt16) -> String {
        "\(runtime) \(vip):\(port) \(real):\(realPort)"
    }

    func status() -> DatapathStatus {
        lock.lock()
        defer { lock.unlock() }
        var nodes: [DatapathStatus.NodeCounters] = []
        for (n, runtime) in runtimes.enumerated() {
            let ports = zip(runtime.node.interfaces, runtime.ports).enumerated().map { p, pair -> DatapathStatus.PortCounters in
                let (iface, port) = pair
                let c = port.counters
                let up: Bool? = n < carrier.count && p < carrier[n].count ? carrier[n][p] : nil
                let active = iface.bond == nil ? nil : runtime.bonds.map { $0.pointee.receivePort(p) != nil }
                return .init(interface: iface.name, kind: port.kind, rxFrames: c.rxPackets, txFrames: c.txPackets,
                             rxDropped: c.rxDropped + c.rxTruncated, txDropped: c.txBusy + c.txTooLong + c.txErrors,
                             carrier: up, bond: iface.bond, bondActive: active)
            }
            var drops: [String: UInt64] = [:]
            for (reason, count) in runtime.forwarder.element.drops.counts { drops[reason.rawValue] = count }
            for (reason, count) in runtime.runner.drops.counts { drops[reason.rawValue, default: 0] += count }
            if runtime.links.pointee.drops > 0 { drops[DropReason.linkDown.rawValue, default: 0] += runtime.links.pointee.drops }
            if let b = runtime.bonds?.pointee.backupDrops, b > 0 { drops[BondMap.backupDrop.rawValue, default: 0] += b }
            var counters = runtime.forwarder.counters
            counters["tx-failures"] = runtime.runner.transmitFailures
            let fast = runtime.fastPath.map { f in
                let (forwarded, stale) = runtime.program?.fastPathStatistics() ?? (0, 0)
                return f.status(forwarded: forwarded, stale: stale)
            }
            nodes.append(.init(node: runtime.node.name, kind: runtime.node.kind.rawValue, ports: ports, drops: drops, counters: counters,
                               linkChanges: n < linkChanges.count ? linkChanges[n] : nil, powered: n < powered.count ? powered[n] : nil,
                               vrrp: VRRPGroupStatus.groups(of: runtime.forwarder, node: runtime.node, now: Self.monotonicNow()),
                               bgp: speakers.first { $0.runtimeIndex == n }?.status(),
                               bfd: speakers.first { $0.runtimeIndex == n }.map { $0.bfdStatus() }.flatMap { $0.isEmpty ? nil : $0 },
                               fastPath: fast))
        }
        var capture: [String: UInt64]?
        if let recorder { capture = ["frames": recorder.frames, "errors": recorder.errors] }
        return DatapathStatus(pid: Processes.currentID, uptimeSeconds: Date().timeIntervalSince(started), nodes: nodes, capture: capture,
                              capturePoints: recorder == nil ? nil : captureCounters.withLock { $0 } ?? [])
    }
}

/// The node's ports as the runner sends on them: a frame is copied into a
/// port's TX ring (the RX frame goes back to its ring after the batch), and
/// the ports given frames are collected to kick them once per burst.
/// A frame for a port without carrier is dropped here (`PortLinks`).
struct LivePorts: RunnerPorts {
    let ports: [AnyPacketPort]
    let links: UnsafeMutablePointer<PortLinks>
    /// The node's bonds: the runner's ports are the element's (a bond is
    /// one), sent on the bond's active member. nil: no bonds.
    let bonds: UnsafeMutablePointer<BondMap>?
    /// Bit p: physical port p was given frames (see `LabDaemon.bit`).
    var given: UInt64 = 0
    let count: Int

    init(ports: [AnyPacketPort], links: UnsafeMutablePointer<PortLinks>, bonds: UnsafeMutablePointer<BondMap>?) {
        self.ports = ports
        self.links = links
        self.bonds = bonds
        count = bonds?.pointee.logicalCount ?? ports.count
    }

    init(_ runtime: NodeRuntime) { self.init(ports: runtime.ports, links: runtime.links, bonds: runtime.bonds) }

    @inline(__always)
    mutating func forward(_ packet: PacketBuffer, on port: PortID) -> Bool {
        send(copying: packet.readOnly, on: port)
    }

    @inline(__always)
    mutating func send(copying frame: UnsafeRawBufferPointer, on port: PortID) -> Bool {
        var p = port.rawValue
        if let bonds { p = bonds.pointee.transmitPort(p) }
        if _slowPath(links.pointee.isDown(p)) {
            links.pointee.drops &+= 1   // sent, and lost on a link without carrier
            return true
        }
        guard ports[p].transmit(copying: frame) else { return false }
        given |= LabDaemon.bit(p)
        return true
    }

    @inline(__always)
    mutating func release(_ packet: PacketBuffer) {}
}

extension LabStore {
    public func controlSocketPath(lab: String) -> String { "\(directory(lab: lab))/control.sock" }
}
