import ReckerPool
import XCTest

/// A domain's latencies: exact while few, a histogram past `exactSamples`, with the same
/// percentiles either way (within the histogram's two significant digits).
final class LatencyRecorderTests: XCTestCase {
    func testFewSamplesAreExactAndManyGoToAHistogramThatAgrees() {
        var few = LatencyRecorder()
        for v: UInt64 in [500, 100, 300, 200, 400] { few.record(v) }
        let q = few.quantiles()
        XCTAssertEqual([q.count, q.sum, q.p50, q.p90, q.p99], [5, 1500, 300, 500, 500])
        var empty = LatencyRecorder()
        XCTAssertEqual(empty.quantiles().count, 0)

        var exact = LatencyRecorder()
        var many = LatencyRecorder()
        for i in 0 ..< LatencyRecorder.exactSamples {
            let v = UInt64(1000 + (i * 7919) % 5000)
            exact.record(v)
            many.record(v)
        }
        let before = exact.quantiles()
        many.record(before.p50)  // one past: the histogram takes over, with the samples so far
        let after = many.quantiles()
        XCTAssertEqual(after.count, before.count + 1)
        for (a, b) in [(before.p50, after.p50), (before.p90, after.p90), (before.p99, after.p99)] {
            XCTAssertLessThanOrEqual(abs(Double(a) - Double(b)) / Double(a), 0.02, "\(before) against \(after)")
        }
        many.record(700_000_000)
        XCTAssertEqual(many.quantiles().count, before.count + 2, "a value past 10 minutes is counted, at the top")
    }
}
