#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Double-precision libm for reference values.
func _exp(_ x: Double) -> Double { exp(x) }
func _log(_ x: Double) -> Double { log(x) }
func _tanh(_ x: Double) -> Double { tanh(x) }
func _erf(_ x: Double) -> Double { erf(x) }
func pow3(_ x: Double) -> Double { x * x * x }
func _erfc(_ x: Double) -> Double { erfc(x) }
