// Wire — packet formats for the wirelab data plane (stdlib only).
//
// Conventions, the same in every file (after smoltcp's `wire` module):
//
// * Views. `XHeader` is a read-only view over an `UnsafeRawBufferPointer`,
//   `XMutableHeader` a view over an `UnsafeMutableRawBufferPointer` with
//   setters (`nonmutating`, so `let` views can write). Untrusted bytes go
//   through `init(validating:) throws(WireError)`, which makes every length
//   check once; after it succeeded no accessor can trap. `init(unchecked:)`
//   is for bytes the caller already validated or is building.
//   Accessors carry the RFC field names, lengths are in BYTES (IPv4
//   `headerLength` is IHL × 4, `fragmentOffset` is the field × 8), and
//   multi-byte fields are big-endian loads. Offsets live in one nested
//   `enum Field` per header. A view's buffer starts at its header; where a
//   protocol has no length field of its own (TCP, ICMP) or its checksum
//   covers the whole message, the buffer must end where the message ends —
//   take it from the enclosing header's `payload`.
//
// * Reprs. `XRepr` is the header as a value (Hashable, Sendable):
//   `init(parsing:)` from a validated view, `headerLength`/`bufferLength`,
//   and `emit(into:)` that writes every field. Checksums are computed by
//   `emit` over the payload already in the buffer (write the payload first).
//   Reprs may allocate (options are `[UInt8]`); they are for building and
//   testing, not for the per-packet path.
//
// * Protocol numbers (`EtherType`, `IPProtocol`, `ARPOperation`,
//   `ICMPv4Type`, `ICMPv6Type`) are open RawRepresentable structs: unknown
//   values survive a round trip.
//
// * Per packet, elements call `FrameParser().parse(frame)` once, read the
//   `ParsedFrame`, and rewrite the frame in place with the
//   `ParsedFrame.rewrite…` / `decrementTimeToLive` helpers, which keep every
//   checksum valid incrementally (RFC 1624) without recomputing:
//
//       let frame: UnsafeMutableRawBufferPointer = …   // one frame in the UMEM
//       do {
//           var p = try FrameParser().parse(UnsafeRawBufferPointer(frame))
//           guard p.isTCP, p.destinationIPv4 == vip, p.destinationPort == 80 else { … }
//           p.rewriteIPv4Destination(real, port: 8080, in: frame)   // LVS NAT
//           p.decrementTimeToLive(in: frame)
//       } catch {
//           drops[error, default: 0] += 1     // error.reason: "truncated", "bad-checksum", …
//       }
//
//   The parser, the views and the rewrites are `@inlinable` and compile to
//   plain loads and stores: no allocation, no class, no existential.
//
// * Checksum offload. Frames from a kernel stack on a veth may carry a
//   partial (CHECKSUM_PARTIAL) transport checksum; the incremental updates
//   here assume complete checksums, so whoever reads frames from such an
//   interface must turn its transmit checksum offload off (`ethtool -K dev
//   tx off` on the sending side) or complete the checksums first.
//
// * Shared words. `ConfigurationVocabulary.swift` is not a packet format:
//   it holds the names the topology file and the elements share (transport
//   protocol, forwarding mode, scheduler, ECMP hash field). It lives here
//   because Wire is the one layer both Topology and Datapath import.
