// Cache prefetch hints for the data plane's batched loops.

/// LLVM's prefetch intrinsic (address, rw 0/1, locality 0...3, cache 1 =
/// data), reached through `@_silgen_name` because the standard library has
/// no prefetch. Arguments must be literal constants at every call site, so
/// callers use the wrappers below. A hint only: it never faults and changes
/// no result.
@_silgen_name("llvm.prefetch.p0") @usableFromInline
func llvmPrefetch(_ address: UnsafeRawPointer, _ rw: Int32, _ locality: Int32, _ cacheType: Int32)

/// Starts loading the cache line at `address` for reading.
@inlinable @inline(__always)
public func prefetchForReading(_ address: UnsafeRawPointer) { llvmPrefetch(address, 0, 3, 1) }

/// Starts loading the cache line at `address` for writing.
@inlinable @inline(__always)
public func prefetchForWriting(_ address: UnsafeRawPointer) { llvmPrefetch(address, 1, 3, 1) }
