/// Human-readable renderings for `quorumctl` without `--json`.
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
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
            ("master", master.map { name in masterAddress.map { "\(name) (\($0))" } ?? name } ?? noMasterText),
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
        if witness == true {
            rows.append(("witness", "yes (votes, never master, runs no hook)"))
        } else if let eligible {
            let reasons = ineligibleReasons ?? []
            rows.append(("eligible", eligible ? "yes" : "no (\(reasons.joined(separator: ", ")))"))
        }
        if let priority, witness != true { rows.append(("priority", String(priority))) }
        if let preemption { rows.append(("preemption", preemption)) }
        if let standby, standby.on {
            rows.append(("standby", "on" + (standby.since.map { " since \($0)" } ?? "") + (standby.persistent ? " (persistent)" : " (until restart)")))
        }
        if let check, check.configured { rows.append(("check", check.text)) }
        if broadcastDiscovery == false { rows.append(("discovery", "seeds only (broadcast off)")) }
        if let seeds, !seeds.isEmpty {
            let connected = seeds.filter { $0.state == "connected" }.count
            rows.append(("seeds", "\(seeds.count), \(connected) connected (quorumctl peers lists them)"))
        }
        for warning in warnings ?? [] { rows.append(("warning", warning)) }

        let width = rows.map { $0.0.count }.max()! + 1
        return rows.map { key, value in (key + ":").padding(to: width) + " " + value + "\n" }.joined()
    }

    /// `none`, and why when the node said (`none (no-quorum: …)`).
    var noMasterText: String {
        guard let reason = noMasterReason else { return "none" }
        return "none (\(NoMasterReason(rawValue: reason)?.explanation ?? reason))"
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

/// UTC ISO-8601 timestamps, by Foundation's ISO-8601 format style.
public enum ISO8601 {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)

    /// `2026-05-01T12:34:56.789Z` for a time in milliseconds since the Unix epoch.
    public static func utc(millisecondsSinceEpoch ms: Int64) -> String {
        // Whole milliseconds plus half of one, so that the formatter, which cuts the fraction
        // to milliseconds, never shows .788 for a .789 that binary floating point holds as
        // .78899…
        style.format(Date(timeIntervalSince1970: (Double(ms) + 0.5) / 1000))
    }
}
