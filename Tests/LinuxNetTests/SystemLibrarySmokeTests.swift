import Testing
import CXDP
import CPcap
import Glibc

/// A missing libxdp/libbpf/libpcap must fail loudly, not at first use in a lab.
@Suite struct SystemLibrarySmokeTests {
    @Test func pcapOpensADeadHandle() throws {
        let handle = try #require(pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, UInt32(PCAP_TSTAMP_PRECISION_NANO)))
        defer { pcap_close(handle) }
        #expect(pcap_datalink(handle) == DLT_EN10MB)
        #expect(pcap_get_tstamp_precision(handle) == PCAP_TSTAMP_PRECISION_NANO)
    }

    @Test func xdpCreatesAUMEM() throws {
        let frameCount: UInt32 = 64
        let size = Int(frameCount) * Int(XSK_UMEM__DEFAULT_FRAME_SIZE)
        let area = try #require(mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(area != MAP_FAILED)
        defer { munmap(area, size) }
        var fill = xsk_ring_prod()
        var completion = xsk_ring_cons()
        var umem: OpaquePointer?
        let rc = xsk_umem__create(&umem, area, UInt64(size), &fill, &completion, nil)
        #expect(rc == 0, "xsk_umem__create failed: \(String(cString: strerror(-rc)))")
        if let umem { xsk_umem__delete(umem) }
    }
}
