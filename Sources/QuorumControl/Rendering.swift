/// Human-readable renderings for `quorumctl` without `--json`.
import QuorumCore

extension StatusReport {
    /// Aligned `key: value` lines, one per field, ending with a newline.
    ///
    /// Extras that the node did not fill are left out; `master` shows `none` when there is none.
    public var table: String {
        var rows: [(String, String)] = [
            ("name", name),
            ("cluster", cluster),
            ("role", role),
            ("master", master.map { name in masterAddress.map { "\(name) (\($0))" } ?? name } ?? "none"),
            ("quorate", quorate ? "yes" : "no"),
            ("epoch", String(epoch)),
            ("cluster size", String(clusterSize)),
            ("majority", String(majority)),
            ("connected", String(connected)),
            ("lost", String(lost)),
        ]
        if let dispatched { rows.append(("dispatched", String(dispatched))) }
        rows.append(("metric", metric))
        if let address {
            rows.append(("address", port.map { NodeIdentity.endpoint(address, UInt16(clamping: $0)) } ?? address))
        } else if let port {
            rows.append(("port", String(port)))
        }
        if let birth { rows.append(("birth", ISO8601.utc(millisecondsSinceEpoch: birth))) }
        if let instance { rows.append(("instance", instance)) }
        if let uptimeSeconds { rows.append(("uptime", Self.duration(seconds: uptimeSeconds))) }
        if let protocolVersion {
            var text = String(protocolVersion)
            if let cluster = clusterProtocolVersion, cluster < protocolVersion {
                let behind = protocolBehind ?? []
                text += " (the cluster speaks \(cluster)\(behind.isEmpty ? "" : ": " + behind.joined(separator: ", ") + " behind"))"
            }
            rows.append(("protocol", text))
        }
        if broadcastDiscovery == false { rows.append(("discovery", "seeds only (broadcast off)")) }
        if let seeds, !seeds.isEmpty {
            let connected = seeds.filter { $0.state == "connected" }.count
            rows.append(("seeds", "\(seeds.count), \(connected) connected (quorumctl peers lists them)"))
        }
        for warning in warnings ?? [] { rows.append(("warning", warning)) }

        let width = rows.map { $0.0.count }.max()! + 1
        return rows.map { key, value in (key + ":").padding(to: width) + " " + value + "\n" }.joined()
    }

    /// `3d 4h 5m 6s`, leading zero units left out.
    static func duration(seconds: Int64) -> String {
        guard seconds > 0 else { return "0s" }
        let parts: [(Int64, String)] = [
            (seconds / 86_400, "d"), (seconds % 86_400 / 3_600, "h"), (seconds % 3_600 / 60, "m"), (seconds % 60, "s"),
        ]
        let shown = parts.drop { $0.0 == 0 }
        return shown.map { "\($0.0)\($0.1)" }.joined(separator: " ")
    }
}

extension PeerReport {
    /// A table with aligned columns NAME ADDRESS PORT STATE BIRTH (birth in UTC ISO-8601), one
    /// row per peer in the given order, ending with a newline. With no peers, only the header.
    public static func table(_ peers: [PeerReport]) -> String {
        let header = ["NAME", "ADDRESS", "PORT", "STATE", "BIRTH"]
        let rows = peers.map { peer in
            [peer.name, peer.address, String(peer.port), peer.state.rawValue, ISO8601.utc(millisecondsSinceEpoch: peer.birth)]
        }
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(to: widths[column])
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}

extension SeedReport {
    /// `seeds:` and one line per seed: the entry, what it resolved to, and its state; empty
    /// when there are no seeds.
    public static func table(_ seeds: [SeedReport]) -> String {
        guard !seeds.isEmpty else { return "" }
        let rows = seeds.map { s -> [String] in
            let addresses = s.addresses.isEmpty ? "(unresolved)" : s.addresses.joined(separator: " ")
            var state = s.state
            if let peer = s.peer, s.state == "connected" { state += " (\(peer))" }
            if let error = s.lastError, s.state != "connected" && s.state != "self" { state += ": \(error)" }
            return [s.spec, addresses, state]
        }
        var widths = [0, 0]
        for row in rows { for c in 0..<2 { widths[c] = max(widths[c], row[c].count) } }
        return "seeds:\n" + rows.map { "  " + $0[0].padding(to: widths[0]) + "  " + $0[1].padding(to: widths[1]) + "  " + $0[2] + "\n" }.joined()
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}

/// UTC ISO-8601 timestamps computed from integers: no locale, no time zone database.
public enum ISO8601 {
    /// `2026-05-01T12:34:56.789Z` for a time in milliseconds since the Unix epoch.
    public static func utc(millisecondsSinceEpoch ms: Int64) -> String {
        let (seconds, milli) = floorDivide(ms, 1000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        func pad(_ value: Int64, _ digits: Int) -> String {
            let text = String(value)
            return text.count >= digits ? text : String(repeating: "0", count: digits - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
            + "\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
            + ".\(pad(milli, 3))Z"
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// Year, month, day of the proleptic Gregorian calendar for a day count from 1970-01-01
    /// (Howard Hinnant's `civil_from_days`).
    private static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
