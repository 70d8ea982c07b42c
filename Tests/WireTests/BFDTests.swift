// BFD control packets (RFC 5880 §4.1): known bytes, round trips, the
// receive checks of §6.8.6 that need no session, RFC 5881's TTL rule.
//
//   swift test --skip-build --filter BFD

import Testing
@testable import Wire

@Suite struct BFDCodecTests {
    @Test func knownBytes() throws {
        let p = BFDControlPacket(state: .down, detectMultiplier: 3, myDiscriminator: 0x0102_0304, yourDiscriminator: 0,
                                 desiredMinTxInterval: 1_000_000, requiredMinRxInterval: 50_000)
        let expected = bytes(hex: "20 40 03 18 01020304 00000000 000f4240 0000c350 00000000")
        #expect(p.encode() == expected)
        #expect(try BFDControlPacket.decode(expected) == p)
    }

    @Test func flagsAndStatesRoundTrip() throws {
        var rng = SplitMix64(seed: 5880)
        for _ in 0..<1000 {
            let p = BFDControlPacket(diagnostic: BFDDiagnostic(rawValue: UInt8(rng.next() % 9)),
                                     state: BFDState(rawValue: UInt8(rng.next() % 4))!,
                                     poll: rng.bool(), final: rng.bool(), controlPlaneIndependent: rng.bool(),
                                     demand: rng.bool(), detectMultiplier: rng.byte() | 1,
                                     myDiscriminator: rng.u32() | 1, yourDiscriminator: rng.u32(),
                                     desiredMinTxInterval: rng.u32(), requiredMinRxInterval: rng.u32(),
                                     requiredMinEchoRxInterval: rng.u32())
            #expect(try BFDControlPacket.decode(p.encode()) == p)
        }
        // P and F and Up: 0b11_1100_00.
        let up = BFDControlPacket(state: .up, poll: true, final: true, detectMultiplier: 3, myDiscriminator: 1,
                                  yourDiscriminator: 2, desiredMinTxInterval: 1, requiredMinRxInterval: 1)
        #expect(up.encode()[1] == 0xF0)
    }

    @Test func receiveChecks() {
        let good = BFDControlPacket(state: .up, detectMultiplier: 3, myDiscriminator: 1, yourDiscriminator: 2,
                                    desiredMinTxInterval: 50_000, requiredMinRxInterval: 50_000).encode()
        func error(_ b: [UInt8]) -> BFDPacketError? {
            do {
                _ = try BFDControlPacket.decode(b)
                return nil
            } catch {
                return error
            }
        }
        #expect(error(good) == nil)
        #expect(error(Array(good.prefix(23))) == .truncated)
        var b = good
        b[0] = 2 << 5
        #expect(error(b) == .badVersion)
        b = good
        b[3] = 20
        #expect(error(b) == .badLength)
        b = good
        b[3] = 30
        #expect(error(b) == .truncated)
        b = good
        b[2] = 0
        #expect(error(b) == .zeroDetectMultiplier)
        b = good
        b[1] |= 0x01
        #expect(error(b) == .multipoint)
        b = good
        b[4...7] = [0, 0, 0, 0]
        #expect(error(b) == .zeroMyDiscriminator)
        // The A bit: length must cover the auth header (26), then it is refused.
        b = good
        b[1] |= 0x04
        #expect(error(b) == .badLength)
        b[3] = 28
        b += [1, 4, 0, 0]  // auth type 1 (simple password), len 4, key id, 1 byte
        #expect(error(b) == .authenticationNotSupported)
    }

    @Test func singleHopNeedsTTL255() {
        #expect(bfdAcceptsSingleHop(ttl: 255, destinationPort: 3784))
        #expect(!bfdAcceptsSingleHop(ttl: 254, destinationPort: 3784))
        #expect(!bfdAcceptsSingleHop(ttl: 255, destinationPort: 4784))
    }
}

@Suite struct BFDCodecFuzzTests {
    /// Random bytes and damaged packets never trap the decoder; whatever it
    /// accepts encodes back to the same first 24 bytes.
    @Test func randomInputNeverTraps() {
        var rng = SplitMix64(seed: 5881)
        let good = BFDControlPacket(state: .up, detectMultiplier: 3, myDiscriminator: 1, yourDiscriminator: 2,
                                    desiredMinTxInterval: 50_000, requiredMinRxInterval: 50_000).encode()
        for i in 0..<50_000 {
            var b = i % 2 == 0 ? rng.bytes(Int(rng.next() % 40)) : good
            if i % 2 == 1 { for _ in 0..<(1 + Int(rng.next() % 3)) { b[Int(rng.next() % 24)] = rng.byte() } }
            if let p = try? BFDControlPacket.decode(b) {
                #expect(p.encode() == Array(b.prefix(24)) || b[3] != 24)
            }
        }
    }
}
