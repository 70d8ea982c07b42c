// CPcap: libpcap, found with pkg-config.
#ifndef CPCAP_SHIM_H
#define CPCAP_SHIM_H
// pcap/bpf.h defines `struct bpf_insn` and `struct bpf_program`, which clash
// with linux/bpf.h and libbpf.h (CXDP) in any Swift module importing both.
// Renaming them here changes no linker symbol (struct tags are not symbols).
#define bpf_insn pcap_bpf_insn
#define bpf_program pcap_bpf_program
#include <pcap/pcap.h>
#undef bpf_insn
#undef bpf_program
#endif
