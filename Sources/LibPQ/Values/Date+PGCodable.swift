import Foundation

/// `timestamptz` ↔ `Date`. Sessions run with `TimeZone=UTC` and `DateStyle=ISO`, so values look
/// like `2026-11-26 13:54:14.123456+00`; parsing is by hand because it is on hot paths.
extension Date: PGCodable {
    /// The microseconds since 1970-01-01 00:00 UTC that this date is sent as (PostgreSQL keeps
    /// microseconds: rounded to the nearest); `nil` for a date sent as `infinity` (positive) or
    /// `-infinity`. The one rule for both formats (text here, binary in ``PGBinaryArray``).
    var pgUnixMicroseconds: Int64? {
        // Dates beyond PostgreSQL's range (or not finite) become ±infinity instead of trapping on the
        // conversion: such a date can come from outside (an absurd Retry-After, an expiry far away).
        guard let micros = Int64(exactly: (timeIntervalSince1970 * 1_000_000).rounded()),
              micros > Int64.min / 2, micros < Int64.max / 2 else { return nil }
        return micros
    }

    public var pgText: String? {
        guard let micros = pgUnixMicroseconds else { return timeIntervalSince1970 > 0 ? "infinity" : "-infinity" }
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        let (days, secondOfDay) = (floorDiv(seconds, 86_400), seconds - floorDiv(seconds, 86_400) * 86_400)
        let (y, m, d) = civilFromDays(days)
        guard (0...9999).contains(y) else {
            return String(
                format: "%04lld-%02lld-%02lld %02lld:%02lld:%02lld.%06lld+00", y, m, d, secondOfDay / 3600,
                (secondOfDay % 3600) / 60, secondOfDay % 60, fraction)
        }
        // Written digit by digit (String(format:) dominated the batched writes' encoding cost).
        return String(unsafeUninitializedCapacity: 29) { buffer in
            var index = 0
            func put(_ value: Int64, digits: Int) {
                var value = value
                for position in stride(from: index + digits - 1, through: index, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
                index += digits
            }
            func put(_ byte: Unicode.Scalar) {
                buffer[index] = UInt8(ascii: byte)
                index += 1
            }
            put(y, digits: 4); put("-"); put(m, digits: 2); put("-"); put(d, digits: 2); put(" ")
            put(secondOfDay / 3600, digits: 2); put(":"); put((secondOfDay % 3600) / 60, digits: 2); put(":")
            put(secondOfDay % 60, digits: 2); put("."); put(fraction, digits: 6); put("+"); put(0, digits: 2)
            return index
        }
    }

    public static func decode(pgText: String?) -> Date? {
        guard var text = pgText else { return nil }
        // Read in place: copying the text into an array first cost an allocation per value (three per
        // claimed event).
        return text.withUTF8(parse)
    }

    public static func decode(pgBytes: UnsafeBufferPointer<UInt8>?) -> Date? { pgBytes.flatMap(parse) }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        guard bytes.count >= 19 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            guard from >= 0, from + count <= bytes.count else { return nil }
            for i in from..<(from + count) {
                let b = bytes[i]
                guard b >= 48 && b <= 57 else { return nil }
                value = value * 10 + Int64(b - 48)
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
            let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var index = 19
        var micros: Int64 = 0
        if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            var scale: Int64 = 100_000
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                micros += Int64(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds: Int64 = 0
        if index < bytes.count {
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            let hours = number(index + 1, 2) ?? 0
            let minutes = (index + 5 < bytes.count + 1 && index + 3 < bytes.count && bytes[index + 3] == UInt8(ascii: ":"))
                ? (number(index + 4, 2) ?? 0) : 0
            offsetSeconds = sign * (hours * 3600 + minutes * 60)
        }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        return Date(timeIntervalSince1970: Double(seconds) + Double(micros) / 1_000_000)
    }
}

private func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
private func daysFromCivil(_ year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = floorDiv(y, 400)
    let yoe = y - era * 400
    let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
}

private func civilFromDays(_ days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = floorDiv(z, 146_097)
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
}
