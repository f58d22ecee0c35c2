import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Controls the thread pool OpenBLAS uses inside `cblas_sgemm`.
///
/// OpenBLAS starts one thread per core by default and the setting is process-wide. A worker that
/// runs several model instances concurrently usually wants a small count per call (often 1) so
/// instances do not oversubscribe the cores; a worker with one instance wants the core count.
/// Set it once at start-up, before running models; changing it while `sgemm` runs elsewhere is
/// allowed by OpenBLAS but takes effect only for later calls.
public enum BLASThreading {
    /// Sets the number of threads OpenBLAS uses (values below 1 are treated as 1).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(clamping: max(1, count)))
    }

    /// The processors online (at least 1): the most threads any setting here gives.
    public static var processorCount: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threadCount: Int {
        Int(openblas_get_num_threads())
    }

    /// The kernel set OpenBLAS chose at load, e.g. `"Haswell"` or `"SkylakeX"` (forced with
    /// the `OPENBLAS_CORETYPE` environment variable, which is read only when the library loads).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }
}
