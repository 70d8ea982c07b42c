// BGP-4 messages (RFC 4271 §4), with capabilities (RFC 5492), multiprotocol
// IPv4 unicast (RFC 4760 capability 1), route refresh (RFC 2918, capability 2
// and message type 5) and 4-octet AS numbers (RFC 6793, capability 65,
// AS4_PATH / AS4_AGGREGATOR towards 2-octet speakers).
//
// Every message starts with the 19-byte header:
//
//   0                   16      18  19
//  +-------------------+-------+---+---------
//  | marker (16 × 0xFF)| length|typ| body ...
//
// length counts the whole message, 19...4096. The control plane is not on the
// per-packet path, so messages are value types over [UInt8] (`BGPMessage`),
// built with `encode(_:)` and read with `decode(type:body:_:)`; a byte stream
// (TCP) is cut into messages by `BGPFramer`. Malformed input never traps: it
// throws the NOTIFICATION RFC 4271 §6 prescribes (`BGPNotification`, code,
// subcode and data), which the session sends before it closes.
//
// UPDATE error handling is RFC 4271's (the whole session is reset), not
// RFC 7606's "treat-as-withdraw".

/// The BGP port (RFC 4271 §8.2.1): TCP 179.
public let bgpPort: UInt16 = 179

/// AS_TRANS (RFC 6793): the 2-octet stand-in for a 4-octet AS number.
public let bgpASTrans: UInt32 = 23456

/// Options that change how a message is read or written: what the two OPENs
/// negotiated.
public struct BGPCodecOptions: Equatable, Sendable {
    /// Both speakers sent capability 65: AS_PATH and AGGREGATOR carry 4-octet
    /// AS numbers. Otherwise 2-octet, with AS4_PATH/AS4_AGGREGATOR for
    /// numbers above 65535 (RFC 6793 §4.2).
    public var fourOctetAS: Bool
    public init(fourOctetAS: Bool) { self.fourOctetAS = fourOctetAS }
    public static let fourOctet = BGPCodecOptions(fourOctetAS: true)
    public static let twoOctet = BGPCodecOptions(fourOctetAS: false)
}

// MARK: - NOTIFICATION

/// A NOTIFICATION (RFC 4271 §4.5): error code, subcode, data. Also the error
/// every decoder throws, so a malformed message turns into the NOTIFICATION
/// to send.
public struct BGPNotification: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public var code: UInt8
    public var subcode: UInt8
    public var data: [UInt8]

    public init(code: UInt8, subcode: UInt8, data: [UInt8] = []) {
        self.code = code
        self.subcode = subcode
        self.data = data
    }

    // Error codes (RFC 4271 §4.5).
    public static let messageHeaderError: UInt8 = 1
    public static let openMessageError: UInt8 = 2
    public static let updateMessageError: UInt8 = 3
    public static let holdTimerExpired: UInt8 = 4
    public static let finiteStateMachineError: UInt8 = 5
    public static let cease: UInt8 = 6

    // Message Header Error subcodes (§6.1).
    public static func connectionNotSynchronized() -> Self { .init(code: 1, subcode: 1) }
    /// Data: the erroneous Length field.
    public static func badMessageLength(_ length: UInt16) -> Self {
        .init(code: 1, subcode: 2, data: [UInt8(length >> 8), UInt8(length & 0xFF)])
    }
    /// Data: the erroneous Type field.
    public static func badMessageType(_ type: UInt8) -> Self { .init(code: 1, subcode: 3, data: [type]) }

    // OPEN Message Error subcodes (§6.2; 7 from RFC 5492).
    /// Data: the largest version we support (4), 2 octets.
    public static func unsupportedVersionNumber() -> Self { .init(code: 2, subcode: 1, data: [0, 4]) }
    public static func badPeerAS() -> Self { .init(code: 2, subcode: 2) }
    public static func badBGPIdentifier() -> Self { .init(code: 2, subcode: 3) }
    public static func unsupportedOptionalParameter() -> Self { .init(code: 2, subcode: 4) }
    public static func unacceptableHoldTime() -> Self { .init(code: 2, subcode: 6) }
    public static func unsupportedCapability(_ data: [UInt8] = []) -> Self { .init(code: 2, subcode: 7, data: data) }
    /// An OPEN whose lengths do not add up (no better subcode in the RFC).
    public static func openUnspecific() -> Self { .init(code: 2, subcode: 0) }

    // UPDATE Message Error subcodes (§6.3).
    public static func malformedAttributeList() -> Self { .init(code: 3, subcode: 1) }
    /// Data: the unrecognized attribute (type, length, value).
    public static func unrecognizedWellKnownAttribute(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 2, data: attribute) }
    /// Data: the type code of the missing attribute.
    public static func missingWellKnownAttribute(_ type: UInt8) -> Self { .init(code: 3, subcode: 3, data: [type]) }
    public static func attributeFlagsError(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 4, data: attribute) }
    public static func attributeLengthError(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 5, data: attribute) }
    public static func invalidOriginAttribute(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 6, data: attribute) }
    public static func invalidNextHopAttribute(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 8, data: attribute) }
    public static func optionalAttributeError(_ attribute: [UInt8]) -> Self { .init(code: 3, subcode: 9, data: attribute) }
    public static func invalidNetworkField() -> Self { .init(code: 3, subcode: 10) }
    public static func malformedASPath() -> Self { .init(code: 3, subcode: 11) }

    /// Hold Timer Expired (§6.5).
    public static func holdTimerExpiredError() -> Self { .init(code: 4, subcode: 0) }
    /// Finite State Machine Error (§6.6) with RFC 6608's subcodes: a message
    /// not expected in OpenSent (1), OpenConfirm (2) or Established (3).
    public static func fsmError(subcode: UInt8) -> Self { .init(code: 5, subcode: subcode) }
    /// Cease (§6.7) with RFC 4486's subcodes (2 Administrative Shutdown,
    /// 7 Connection Collision Resolution, …).
    public static func ceaseError(subcode: UInt8) -> Self { .init(code: 6, subcode: subcode) }

    public var description: String {
        let names: [UInt8: String] = [1: "message header error", 2: "OPEN message error", 3: "UPDATE message error",
                                      4: "hold timer expired", 5: "finite state machine error", 6: "cease"]
        let hex = data.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        return "\(names[code] ?? "code \(code)") (\(code)/\(subcode)\(data.isEmpty ? "" : " data \(hex)"))"
    }
}

// MARK: - OPEN

/// A capability advertised in an OPEN (RFC 5492): code, value.
public struct BGPCapability: Equatable, Hashable, Sendable {
    public var code: UInt8
    public var value: [UInt8]
    public init(code: UInt8, value: [UInt8]) {
        self.code = code
        self.value = value
    }

    public static let multiprotocolCode: UInt8 = 1
    public static let routeRefreshCode: UInt8 = 2
    public static let fourOctetASCode: UInt8 = 65

    /// Multiprotocol extensions (RFC 4760): AFI, reserved, SAFI.
    public static func multiprotocol(afi: UInt16 = 1, safi: UInt8 = 1) -> Self {
        .init(code: multiprotocolCode, value: [UInt8(afi >> 8), UInt8(afi & 0xFF), 0, safi])
    }
    public static let routeRefresh = BGPCapability(code: routeRefreshCode, value: [])
    /// Support for 4-octet AS numbers (RFC 6793) and this speaker's AS.
    public static func fourOctetAS(_ asn: UInt32) -> Self {
        .init(code: fourOctetASCode, value: bgpU32Bytes(asn))
    }

    /// The AS of a capability 65 with a 4-byte value, else nil.
    public var fourOctetASNumber: UInt32? {
        guard code == Self.fourOctetASCode, value.count == 4 else { return nil }
        return bgpU32(value, 0)
    }
    /// (AFI, SAFI) of a capability 1 with a 4-byte value, else nil.
    public var multiprotocolFamily: (afi: UInt16, safi: UInt8)? {
        guard code == Self.multiprotocolCode, value.count == 4 else { return nil }
        return (UInt16(value[0]) << 8 | UInt16(value[1]), value[3])
    }
}

/// An OPEN message (RFC 4271 §4.2). Optional parameters other than
/// capabilities (type 2) are refused with 2/4 when read; all capabilities are
/// kept in order, one capability per optional parameter when written (as BIRD
/// and most speakers do).
public struct BGPOpen: Equatable, Hashable, Sendable {
    public var version: UInt8
    /// The My Autonomous System field: the AS, or AS_TRANS when the AS needs
    /// 4 octets. `autonomousSystem` is the real one.
    public var myAS: UInt16
    /// Hold Time in seconds: 0 or ≥ 3.
    public var holdTime: UInt16
    public var bgpIdentifier: IPv4Address
    public var capabilities: [BGPCapability]

    public init(version: UInt8 = 4, myAS: UInt16, holdTime: UInt16, bgpIdentifier: IPv4Address,
                capabilities: [BGPCapability]) {
        self.version = version
        self.myAS = myAS
        self.holdTime = holdTime
        self.bgpIdentifier = bgpIdentifier
        self.capabilities = capabilities
    }

    /// The OPEN a speaker of `asn` sends: My AS is AS_TRANS when `asn` needs
    /// 4 octets (RFC 6793 §4.1); capabilities: IPv4 unicast, route refresh,
    /// 4-octet AS (unless `fourOctetAS` is false, then `asn` must fit 2 octets).
    public init(asn: UInt32, holdTime: UInt16, bgpIdentifier: IPv4Address, fourOctetAS: Bool = true,
                routeRefresh: Bool = true) {
        var caps: [BGPCapability] = [.multiprotocol()]
        if routeRefresh { caps.append(.routeRefresh) }
        if fourOctetAS { caps.append(.fourOctetAS(asn)) }
        self.init(myAS: asn > 0xFFFF ? UInt16(bgpASTrans) : UInt16(asn), holdTime: holdTime,
                  bgpIdentifier: bgpIdentifier, capabilities: caps)
    }

    /// The speaker's AS: capability 65's if present, else My AS.
    public var autonomousSystem: UInt32 {
        capabilities.lazy.compactMap(\.fourOctetASNumber).first ?? UInt32(myAS)
    }
    public var supportsFourOctetAS: Bool { capabilities.contains { $0.fourOctetASNumber != nil } }

    func encodeBody() -> [UInt8] {
        var params: [UInt8] = []
        for c in capabilities {
            params += [2, UInt8(2 + c.value.count), c.code, UInt8(c.value.count)] + c.value
        }
        precondition(params.count <= 255, "OPEN optional parameters longer than 255 bytes")
        var out: [UInt8] = [version, UInt8(myAS >> 8), UInt8(myAS & 0xFF), UInt8(holdTime >> 8), UInt8(holdTime & 0xFF)]
        out += bgpU32Bytes(bgpIdentifier.rawValue)
        out.append(UInt8(params.count))
        return out + params
    }

    /// Reads the body (after the header). Checks only the syntax (lengths,
    /// parameter types); the session checks version, AS, hold time and
    /// identifier (`BGPOpen.validate` below), in the RFC's order.
    static func decode(body: [UInt8]) throws(BGPNotification) -> BGPOpen {
        guard body.count >= 10 else { throw .badMessageLength(UInt16(19 + body.count)) }
        let optLength = Int(body[9])
        guard 10 + optLength == body.count else { throw .openUnspecific() }
        var caps: [BGPCapability] = []
        var i = 10
        while i < body.count {
            guard i + 2 <= body.count else { throw .openUnspecific() }
            let type = body[i], length = Int(body[i + 1])
            guard i + 2 + length <= body.count else { throw .openUnspecific() }
            guard type == 2 else { throw .unsupportedOptionalParameter() }
            var j = i + 2
            let end = i + 2 + length
            while j < end {
                guard j + 2 <= end else { throw .openUnspecific() }
                let code = body[j], clen = Int(body[j + 1])
                guard j + 2 + clen <= end else { throw .openUnspecific() }
                caps.append(BGPCapability(code: code, value: Array(body[(j + 2)..<(j + 2 + clen)])))
                j += 2 + clen
            }
            i = end
        }
        return BGPOpen(version: body[0], myAS: UInt16(body[1]) << 8 | UInt16(body[2]),
                       holdTime: UInt16(body[3]) << 8 | UInt16(body[4]),
                       bgpIdentifier: IPv4Address(rawValue: bgpU32(body, 5)), capabilities: caps)
    }

    /// RFC 4271 §6.2 checks, in order: version 4 (2/1), the peer's AS if one
    /// is expected (2/2; with capability 65 the AS is the capability's, and My
    /// AS must then be that AS or AS_TRANS), hold time 0 or ≥ 3 (2/6; also
    /// below `minimumHoldTime` when that is above 3), identifier not 0, not
    /// multicast/broadcast, and not ours for an iBGP peer (2/3). A capability
    /// 65 with a length other than 4 is 2/0.
    public func validate(expectedPeerAS: UInt32?, localIdentifier: IPv4Address, localAS: UInt32,
                         minimumHoldTime: UInt16 = 3) throws(BGPNotification) {
        guard version == 4 else { throw .unsupportedVersionNumber() }
        for c in capabilities where c.code == BGPCapability.fourOctetASCode && c.value.count != 4 {
            throw .openUnspecific()
        }
        let asn = autonomousSystem
        if let cap = capabilities.lazy.compactMap(\.fourOctetASNumber).first {
            let expectedField = cap > 0xFFFF ? UInt16(bgpASTrans) : UInt16(cap)
            guard myAS == expectedField || myAS == UInt16(bgpASTrans) else { throw .badPeerAS() }
        }
        if let expected = expectedPeerAS, asn != expected { throw .badPeerAS() }
        if asn == 0 { throw .badPeerAS() }
        guard holdTime == 0 || holdTime >= max(3, minimumHoldTime) else { throw .unacceptableHoldTime() }
        let id = bgpIdentifier
        guard id.rawValue != 0, !id.isMulticast, id != .broadcast else { throw .badBGPIdentifier() }
        if asn == localAS, id == localIdentifier { throw .badBGPIdentifier() }
    }
}

// MARK: - UPDATE

/// ORIGIN values (RFC 4271 §5.1.1).
public struct BGPOrigin: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let igp = BGPOrigin(rawValue: 0)
    public static let egp = BGPOrigin(rawValue: 1)
    public static let incomplete = BGPOrigin(rawValue: 2)
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { ["IGP", "EGP", "INCOMPLETE"].indices.contains(Int(rawValue)) ? ["IGP", "EGP", "INCOMPLETE"][Int(rawValue)] : "\(rawValue)" }
}

/// One AS_PATH segment (RFC 4271 §4.3): type 1 AS_SET, 2 AS_SEQUENCE (3 and
/// 4, confederations (RFC 5065), are kept but not interpreted).
public struct BGPASPathSegment: Equatable, Hashable, Sendable {
    public var type: UInt8
    public var asns: [UInt32]
    public init(type: UInt8, asns: [UInt32]) {
        self.type = type
        self.asns = asns
    }
    public static let setType: UInt8 = 1
    public static let sequenceType: UInt8 = 2
    public static func sequence(_ asns: [UInt32]) -> Self { .init(type: sequenceType, asns: asns) }
    public static func set(_ asns: [UInt32]) -> Self { .init(type: setType, asns: asns) }
}

/// A path attribute wirelab does not interpret, kept as read: flags (without
/// the Extended Length bit, which is recomputed when written), type, value.
public struct BGPRawAttribute: Equatable, Hashable, Sendable {
    public var flags: UInt8
    public var type: UInt8
    public var value: [UInt8]
    public init(flags: UInt8, type: UInt8, value: [UInt8]) {
        self.flags = flags & ~BGPPathAttributes.extendedLengthFlag
        self.type = type
        self.value = value
    }
    public var isOptional: Bool { flags & BGPPathAttributes.optionalFlag != 0 }
    public var isTransitive: Bool { flags & BGPPathAttributes.transitiveFlag != 0 }
}

/// The path attributes of an UPDATE (RFC 4271 §5). nil = absent.
public struct BGPPathAttributes: Equatable, Hashable, Sendable {
    public var origin: BGPOrigin?
    /// AS numbers always 4 octets here, whatever the session encodes.
    public var asPath: [BGPASPathSegment]?
    public var nextHop: IPv4Address?
    public var multiExitDisc: UInt32?
    public var localPref: UInt32?
    public var atomicAggregate: Bool
    public var aggregator: (asn: UInt32, address: IPv4Address)? {
        get { aggregatorASN.map { ($0, aggregatorAddress ?? .any) } }
        set { aggregatorASN = newValue?.asn; aggregatorAddress = newValue?.address }
    }
    var aggregatorASN: UInt32?
    var aggregatorAddress: IPv4Address?
    /// Attributes not interpreted (unknown optional ones, in the order read).
    public var others: [BGPRawAttribute]

    public init(origin: BGPOrigin? = nil, asPath: [BGPASPathSegment]? = nil, nextHop: IPv4Address? = nil,
                multiExitDisc: UInt32? = nil, localPref: UInt32? = nil, atomicAggregate: Bool = false,
                others: [BGPRawAttribute] = []) {
        self.origin = origin
        self.asPath = asPath
        self.nextHop = nextHop
        self.multiExitDisc = multiExitDisc
        self.localPref = localPref
        self.atomicAggregate = atomicAggregate
        self.others = others
    }

    public static let optionalFlag: UInt8 = 0x80
    public static let transitiveFlag: UInt8 = 0x40
    public static let partialFlag: UInt8 = 0x20
    public static let extendedLengthFlag: UInt8 = 0x10

    // Type codes.
    public static let originType: UInt8 = 1
    public static let asPathType: UInt8 = 2
    public static let nextHopType: UInt8 = 3
    public static let multiExitDiscType: UInt8 = 4
    public static let localPrefType: UInt8 = 5
    public static let atomicAggregateType: UInt8 = 6
    public static let aggregatorType: UInt8 = 7
    public static let as4PathType: UInt8 = 17
    public static let as4AggregatorType: UInt8 = 18

    /// AS_PATH length for best-path selection (RFC 4271 §9.1.2.2 a): an
    /// AS_SET counts 1, an AS_SEQUENCE its AS numbers, confederation
    /// segments 0 (RFC 5065 §5.3).
    public var asPathLength: Int {
        (asPath ?? []).reduce(0) { n, s in
            switch s.type {
            case BGPASPathSegment.setType: n + 1
            case BGPASPathSegment.sequenceType: n + s.asns.count
            default: n
            }
        }
    }

    /// The first AS of the path (the neighbour's), if it starts with a sequence.
    public var neighbourAS: UInt32? {
        guard let first = asPath?.first, first.type == BGPASPathSegment.sequenceType else { return nil }
        return first.asns.first
    }
}

/// An UPDATE (RFC 4271 §4.3): withdrawn IPv4 prefixes, path attributes,
/// announced IPv4 prefixes (NLRI). Prefixes are read with their host bits
/// cleared.
public struct BGPUpdate: Equatable, Hashable, Sendable {
    public var withdrawn: [IPv4Prefix]
    public var attributes: BGPPathAttributes
    public var nlri: [IPv4Prefix]

    public init(withdrawn: [IPv4Prefix] = [], attributes: BGPPathAttributes = .init(), nlri: [IPv4Prefix] = []) {
        self.withdrawn = withdrawn
        self.attributes = attributes
        self.nlri = nlri
    }

    /// An UPDATE with no withdrawn routes and no attributes: End-of-RIB for
    /// IPv4 unicast (RFC 4724 §2).
    public var isEndOfRIB: Bool { withdrawn.isEmpty && nlri.isEmpty && attributes == BGPPathAttributes() }

    func encodeBody(_ options: BGPCodecOptions) -> [UInt8] {
        let w = encodePrefixes(withdrawn)
        let a = attributes.encode(options)
        var out = [UInt8(w.count >> 8), UInt8(w.count & 0xFF)] + w
        out += [UInt8(a.count >> 8), UInt8(a.count & 0xFF)] + a
        return out + encodePrefixes(nlri)
    }

    static func decode(body: [UInt8], _ options: BGPCodecOptions) throws(BGPNotification) -> BGPUpdate {
        // §6.3: lengths that run past the message → Malformed Attribute List.
        guard body.count >= 4 else { throw .badMessageLength(UInt16(19 + body.count)) }
        let wl = Int(body[0]) << 8 | Int(body[1])
        guard 2 + wl + 2 <= body.count else { throw .malformedAttributeList() }
        let al = Int(body[2 + wl]) << 8 | Int(body[3 + wl])
        guard 4 + wl + al <= body.count else { throw .malformedAttributeList() }
        let withdrawn = try decodePrefixes(body[2..<(2 + wl)])
        let nlri = try decodePrefixes(body[(4 + wl + al)...])
        let attributes = try BGPPathAttributes.decode(body[(4 + wl)..<(4 + wl + al)], options,
                                                      hasNLRI: !nlri.isEmpty)
        return BGPUpdate(withdrawn: withdrawn, attributes: attributes, nlri: nlri)
    }
}

extension BGPPathAttributes {
    static func attribute(_ flags: UInt8, _ type: UInt8, _ value: [UInt8]) -> [UInt8] {
        if value.count > 255 {
            return [flags | extendedLengthFlag, type, UInt8(value.count >> 8), UInt8(value.count & 0xFF)] + value
        }
        return [flags & ~extendedLengthFlag, type, UInt8(value.count)] + value
    }

    static func encodeASPath(_ segments: [BGPASPathSegment], fourOctet: Bool) -> [UInt8] {
        var out: [UInt8] = []
        for s in segments {
            // A segment holds at most 255 AS numbers; longer ones are split.
            var rest = s.asns[...]
            repeat {
                let chunk = rest.prefix(255)
                rest = rest.dropFirst(chunk.count)
                out += [s.type, UInt8(chunk.count)]
                for asn in chunk {
                    if fourOctet { out += bgpU32Bytes(asn) } else {
                        let a = asn > 0xFFFF ? bgpASTrans : asn
                        out += [UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)]
                    }
                }
            } while !rest.isEmpty
        }
        return out
    }

    /// The attributes in type-code order (as RFC 4271 §5 recommends).
    func encode(_ options: BGPCodecOptions) -> [UInt8] {
        var items: [(UInt8, [UInt8])] = []
        let wellKnown = Self.transitiveFlag
        if let origin { items.append((1, Self.attribute(wellKnown, 1, [origin.rawValue]))) }
        if let asPath {
            items.append((2, Self.attribute(wellKnown, 2, Self.encodeASPath(asPath, fourOctet: options.fourOctetAS))))
            if !options.fourOctetAS, asPath.contains(where: { $0.asns.contains { $0 > 0xFFFF } }) {
                items.append((17, Self.attribute(Self.optionalFlag | Self.transitiveFlag, 17,
                                                 Self.encodeASPath(asPath, fourOctet: true))))
            }
        }
        if let nextHop { items.append((3, Self.attribute(wellKnown, 3, bgpU32Bytes(nextHop.rawValue)))) }
        if let multiExitDisc { items.append((4, Self.attribute(Self.optionalFlag, 4, bgpU32Bytes(multiExitDisc)))) }
        if let localPref { items.append((5, Self.attribute(wellKnown, 5, bgpU32Bytes(localPref)))) }
        if atomicAggregate { items.append((6, Self.attribute(wellKnown, 6, []))) }
        if let asn = aggregatorASN {
            let address = bgpU32Bytes((aggregatorAddress ?? .any).rawValue)
            let flags = Self.optionalFlag | Self.transitiveFlag
            if options.fourOctetAS {
                items.append((7, Self.attribute(flags, 7, bgpU32Bytes(asn) + address)))
            } else {
                let a = asn > 0xFFFF ? bgpASTrans : asn
                items.append((7, Self.attribute(flags, 7, [UInt8(a >> 8), UInt8(a & 0xFF)] + address)))
                if asn > 0xFFFF { items.append((18, Self.attribute(flags, 18, bgpU32Bytes(asn) + address))) }
            }
        }
        for o in others { items.append((o.type, Self.attribute(o.flags, o.type, o.value))) }
        // Stable sort by type code: `others` keep their order among equals.
        return items.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
            .flatMap { $0.element.1 }
    }

    static func decodeASPath(_ v: ArraySlice<UInt8>, fourOctet: Bool) throws(BGPNotification) -> [BGPASPathSegment] {
        var out: [BGPASPathSegment] = []
        var i = v.startIndex
        let width = fourOctet ? 4 : 2
        while i < v.endIndex {
            guard i + 2 <= v.endIndex else { throw .malformedASPath() }
            let type = v[i], count = Int(v[i + 1])
            guard (1...4).contains(type), count > 0, i + 2 + count * width <= v.endIndex else { throw .malformedASPath() }
            var asns: [UInt32] = []
            asns.reserveCapacity(count)
            for k in 0..<count {
                let p = i + 2 + k * width
                asns.append(fourOctet ? bgpU32(v, p) : UInt32(v[p]) << 8 | UInt32(v[p + 1]))
            }
            out.append(BGPASPathSegment(type: type, asns: asns))
            i += 2 + count * width
        }
        return out
    }

    /// RFC 6793 §4.2.3: an old speaker's AS_PATH with AS_TRANS, and the
    /// AS4_PATH it carried: keep the leading AS_PATH numbers the AS4_PATH
    /// lacks, then the AS4_PATH. An AS4_PATH longer than the AS_PATH is
    /// ignored.
    static func merge(asPath: [BGPASPathSegment], as4Path: [BGPASPathSegment]) -> [BGPASPathSegment] {
        let old = BGPPathAttributes(asPath: asPath).asPathLength
        let new = BGPPathAttributes(asPath: as4Path).asPathLength
        guard new <= old else { return asPath }
        var keep = old - new
        var out: [BGPASPathSegment] = []
        for s in asPath where keep > 0 {
            if s.type == BGPASPathSegment.sequenceType {
                let take = min(keep, s.asns.count)
                out.append(.sequence(Array(s.asns.prefix(take))))
                keep -= take
            } else if s.type == BGPASPathSegment.setType {
                out.append(s)
                keep -= 1
            } else {
                out.append(s)
            }
        }
        return out + as4Path
    }

    static func decode(_ bytes: ArraySlice<UInt8>, _ options: BGPCodecOptions, hasNLRI: Bool) throws(BGPNotification) -> BGPPathAttributes {
        var a = BGPPathAttributes()
        var seen = Set<UInt8>()
        var as4Path: [BGPASPathSegment]?
        var as4Aggregator: (UInt32, IPv4Address)?
        var i = bytes.startIndex
        while i < bytes.endIndex {
            guard i + 2 <= bytes.endIndex else { throw .malformedAttributeList() }
            let flags = bytes[i], type = bytes[i + 1]
            let extended = flags & extendedLengthFlag != 0
            let headerLength = extended ? 4 : 3
            guard i + headerLength <= bytes.endIndex else { throw .malformedAttributeList() }
            let length = extended ? Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) : Int(bytes[i + 2])
            guard i + headerLength + length <= bytes.endIndex else { throw .malformedAttributeList() }
            let whole = Array(bytes[i..<(i + headerLength + length)])
            let v = bytes[(i + headerLength)..<(i + headerLength + length)]
            i += headerLength + length
            // §6.3: an attribute that appears twice → Malformed Attribute List.
            guard seen.insert(type).inserted else { throw .malformedAttributeList() }

            // Flags of the attributes we know: well-known ones are transitive,
            // not optional, not partial; MED is optional non-transitive (not
            // partial); AGGREGATOR/AS4_* are optional transitive (partial allowed).
            let known: UInt8? = switch type {
            case 1, 2, 3, 5, 6: transitiveFlag
            case 4: optionalFlag
            case 7, 17, 18: optionalFlag | transitiveFlag
            default: nil
            }
            if let expected = known {
                let mask: UInt8 = expected & optionalFlag != 0 && expected & transitiveFlag != 0 ? 0xC0 : 0xE0
                guard flags & mask == expected else { throw .attributeFlagsError(whole) }
            }
            switch type {
            case 1:
                guard length == 1 else { throw .attributeLengthError(whole) }
                guard v.first! <= 2 else { throw .invalidOriginAttribute(whole) }
                a.origin = BGPOrigin(rawValue: v.first!)
            case 2:
                a.asPath = try decodeASPath(v, fourOctet: options.fourOctetAS)
            case 3:
                guard length == 4 else { throw .attributeLengthError(whole) }
                let hop = IPv4Address(rawValue: bgpU32(v, v.startIndex))
                // §6.3: a syntactically incorrect NEXT_HOP (0, broadcast,
                // multicast: not a host address).
                guard hop.rawValue != 0, hop != .broadcast, !hop.isMulticast else { throw .invalidNextHopAttribute(whole) }
                a.nextHop = hop
            case 4:
                guard length == 4 else { throw .attributeLengthError(whole) }
                a.multiExitDisc = bgpU32(v, v.startIndex)
            case 5:
                guard length == 4 else { throw .attributeLengthError(whole) }
                a.localPref = bgpU32(v, v.startIndex)
            case 6:
                guard length == 0 else { throw .attributeLengthError(whole) }
                a.atomicAggregate = true
            case 7:
                let width = options.fourOctetAS ? 8 : 6
                guard length == width else { throw .attributeLengthError(whole) }
                let s = v.startIndex
                a.aggregatorASN = options.fourOctetAS ? bgpU32(v, s) : UInt32(v[s]) << 8 | UInt32(v[s + 1])
                a.aggregatorAddress = IPv4Address(rawValue: bgpU32(v, s + width - 4))
            case 17 where !options.fourOctetAS:
                // RFC 6793 §6: a malformed AS4_PATH is discarded, not an error.
                as4Path = try? decodeASPath(v, fourOctet: true)
            case 18 where !options.fourOctetAS:
                if length == 8 { as4Aggregator = (bgpU32(v, v.startIndex), IPv4Address(rawValue: bgpU32(v, v.startIndex + 4))) }
            case 17, 18:
                break  // RFC 6793 §4.1: a NEW speaker discards them from a NEW speaker.
            default:
                // §6.3: an unrecognized well-known attribute is an error; an
                // unrecognized optional one is kept (transitive ones are passed
                // on with Partial set by whoever re-advertises them).
                guard flags & optionalFlag != 0 else { throw .unrecognizedWellKnownAttribute(whole) }
                a.others.append(BGPRawAttribute(flags: flags, type: type, value: Array(v)))
            }
        }
        // RFC 6793 §4.2.3: an AGGREGATOR with an AS other than AS_TRANS means
        // the AS4_* attributes are stale: ignore them.
        if a.aggregatorASN.map({ $0 == bgpASTrans }) ?? true {
            if let as4Aggregator, a.aggregatorASN != nil { a.aggregator = as4Aggregator }
            if let as4Path, let path = a.asPath { a.asPath = merge(asPath: path, as4Path: as4Path) }
        }
        // §6.3: ORIGIN, AS_PATH and NEXT_HOP are mandatory with NLRI.
        if hasNLRI {
            if a.origin == nil { throw .missingWellKnownAttribute(1) }
            if a.asPath == nil { throw .missingWellKnownAttribute(2) }
            if a.nextHop == nil { throw .missingWellKnownAttribute(3) }
        }
        return a
    }
}

func encodePrefixes(_ prefixes: [IPv4Prefix]) -> [UInt8] {
    var out: [UInt8] = []
    for p in prefixes {
        out.append(UInt8(p.length))
        let n = (p.length + 7) / 8
        let raw = p.network.rawValue
        for k in 0..<n { out.append(UInt8(truncatingIfNeeded: raw >> UInt32(24 - 8 * k))) }
    }
    return out
}

/// Prefixes as length + the fewest octets (RFC 4271 §4.3); a length above 32
/// or octets past the field → Invalid Network Field.
func decodePrefixes(_ bytes: ArraySlice<UInt8>) throws(BGPNotification) -> [IPv4Prefix] {
    var out: [IPv4Prefix] = []
    var i = bytes.startIndex
    while i < bytes.endIndex {
        let length = Int(bytes[i])
        guard length <= 32 else { throw .invalidNetworkField() }
        let n = (length + 7) / 8
        guard i + 1 + n <= bytes.endIndex else { throw .invalidNetworkField() }
        var raw: UInt32 = 0
        for k in 0..<n { raw |= UInt32(bytes[i + 1 + k]) << UInt32(24 - 8 * k) }
        out.append(IPv4Prefix(address: IPv4Address(rawValue: raw), length: length).canonical)
        i += 1 + n
    }
    return out
}

// MARK: - Messages and framing

/// One BGP message.
public enum BGPMessage: Equatable, Hashable, Sendable {
    case open(BGPOpen)
    case update(BGPUpdate)
    case notification(BGPNotification)
    case keepalive
    /// ROUTE-REFRESH (RFC 2918): AFI, SAFI.
    case routeRefresh(afi: UInt16, safi: UInt8)

    public static let headerLength = 19
    public static let maximumLength = 4096

    /// The Type field.
    public var type: UInt8 {
        switch self {
        case .open: 1
        case .update: 2
        case .notification: 3
        case .keepalive: 4
        case .routeRefresh: 5
        }
    }

    /// The whole message, header included. An UPDATE longer than 4096 bytes
    /// is the caller's to split (`BGPUpdate.split`).
    public func encode(_ options: BGPCodecOptions = .fourOctet) -> [UInt8] {
        let body: [UInt8] = switch self {
        case .open(let o): o.encodeBody()
        case .update(let u): u.encodeBody(options)
        case .notification(let n): [n.code, n.subcode] + n.data
        case .keepalive: []
        case .routeRefresh(let afi, let safi): [UInt8(afi >> 8), UInt8(afi & 0xFF), 0, safi]
        }
        let length = Self.headerLength + body.count
        return [UInt8](repeating: 0xFF, count: 16) + [UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type] + body
    }

    /// Reads one message's body given its Type (the header already checked by
    /// `BGPFramer`). Per-type length limits (§6.1) → 1/2.
    public static func decode(type: UInt8, body: [UInt8], _ options: BGPCodecOptions = .fourOctet) throws(BGPNotification) -> BGPMessage {
        let length = UInt16(headerLength + body.count)
        switch type {
        case 1:
            guard body.count >= 10 else { throw .badMessageLength(length) }
            return .open(try BGPOpen.decode(body: body))
        case 2:
            guard body.count >= 4 else { throw .badMessageLength(length) }
            return .update(try BGPUpdate.decode(body: body, options))
        case 3:
            guard body.count >= 2 else { throw .badMessageLength(length) }
            return .notification(BGPNotification(code: body[0], subcode: body[1], data: Array(body[2...])))
        case 4:
            guard body.isEmpty else { throw .badMessageLength(length) }
            return .keepalive
        case 5:
            guard body.count == 4 else { throw .badMessageLength(length) }
            return .routeRefresh(afi: UInt16(body[0]) << 8 | UInt16(body[1]), safi: body[3])
        default:
            throw .badMessageType(type)
        }
    }

    /// Reads exactly one whole message (header included).
    public static func decode(_ bytes: [UInt8], _ options: BGPCodecOptions = .fourOctet) throws(BGPNotification) -> BGPMessage {
        var framer = BGPFramer()
        framer.append(bytes)
        guard let (type, body) = try framer.next() else { throw .badMessageLength(UInt16(clamping: bytes.count)) }
        guard framer.buffered == 0 else { throw .badMessageLength(UInt16(clamping: bytes.count)) }
        return try decode(type: type, body: body, options)
    }
}

extension BGPUpdate {
    /// This UPDATE as several that each fit in 4096 bytes: withdrawals first,
    /// then the NLRI in chunks under the same attributes.
    public func split(_ options: BGPCodecOptions) -> [BGPUpdate] {
        if BGPMessage.update(self).encode(options).count <= BGPMessage.maximumLength { return [self] }
        var out: [BGPUpdate] = []
        let attributeBytes = attributes.encode(options).count
        let room = BGPMessage.maximumLength - BGPMessage.headerLength - 4
        var rest = withdrawn[...]
        while !rest.isEmpty {
            let chunk = Array(rest.prefix(room / 5))
            rest = rest.dropFirst(chunk.count)
            out.append(BGPUpdate(withdrawn: chunk))
        }
        var nrest = nlri[...]
        while !nrest.isEmpty {
            let chunk = Array(nrest.prefix(max(1, (room - attributeBytes) / 5)))
            nrest = nrest.dropFirst(chunk.count)
            out.append(BGPUpdate(attributes: attributes, nlri: chunk))
        }
        return out
    }
}

/// Cuts a TCP byte stream into BGP messages: feed it what `read` returned
/// (`append`), then take messages with `next()` until it returns nil (the
/// rest of a message has not arrived yet). Checks the header (§6.1): marker
/// all ones (1/1), length 19...4096 (1/2). The per-type checks are
/// `BGPMessage.decode(type:body:_:)`'s.
public struct BGPFramer: Sendable {
    var buffer: [UInt8] = []
    var start = 0

    public init() {}

    /// Bytes received but not yet returned as a message.
    public var buffered: Int { buffer.count - start }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0, start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 4096 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole message's Type and body, or nil when it has not all
    /// arrived. After a throw the stream is out of sync: close the connection.
    public mutating func next() throws(BGPNotification) -> (type: UInt8, body: [UInt8])? {
        guard buffered >= BGPMessage.headerLength else { return nil }
        for k in 0..<16 where buffer[start + k] != 0xFF { throw .connectionNotSynchronized() }
        let length = Int(buffer[start + 16]) << 8 | Int(buffer[start + 17])
        guard length >= BGPMessage.headerLength, length <= BGPMessage.maximumLength else {
            throw .badMessageLength(UInt16(length))
        }
        guard buffered >= length else { return nil }
        let type = buffer[start + 18]
        let body = Array(buffer[(start + 19)..<(start + length)])
        start += length
        return (type, body)
    }
}

// MARK: - Bytes

@inline(__always) func bgpU32<C: RandomAccessCollection<UInt8>>(_ b: C, _ i: C.Index) -> UInt32 where C.Index == Int {
    UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
}

@inline(__always) func bgpU32Bytes(_ v: UInt32) -> [UInt8] {
    [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
}
