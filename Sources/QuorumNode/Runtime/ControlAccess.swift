import QuorumControlServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Who may use the control socket: root, the user quorumd runs as, and members of the group
/// quorumd runs as (under the unit: `quorum`, the group that owns the socket).
///
/// The socket file's mode (0660) already makes the kernel refuse everyone else at connect;
/// this check, on the caller's credentials from `SO_PEERCRED`, refuses and logs anyone who
/// got through anyway (for example a socket given a looser mode by hand). Under
/// `PrivateUsers=yes` callers other than root and the service user are not mapped into the
/// service's user namespace and show up as the overflow user; for them the kernel's check
/// of the socket file's group is what counts.
public enum ControlAccess {
    public static func policy() -> @Sendable (PeerCredentials) -> String? {
        let ownUID = geteuid()
        let ownGID = getegid()
        let overflowUID = UInt32(readNumber("/proc/sys/kernel/overflowuid") ?? 65534)
        let mappedNamespace = isInUserNamespace()
        let groupName = groupName(of: ownGID)
        return { caller in
            if caller.uid == 0 || caller.uid == ownUID || caller.gid == ownGID { return nil }
            if mappedNamespace && caller.uid == overflowUID { return nil }
            if isMember(uid: caller.uid, primaryGID: caller.gid, of: ownGID) { return nil }
            return "uid \(caller.uid) is not root and not in group \(groupName)"
        }
    }

    static func isMember(uid: UInt32, primaryGID: UInt32, of group: gid_t) -> Bool {
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primaryGID, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, primaryGID, &groups, &count) >= 0 else { return false }
        }
        return groups.prefix(Int(count)).contains(group)
    }

    static func groupName(of gid: gid_t) -> String {
        guard let gr = getgrgid(gid), let name = gr.pointee.gr_name else { return "\(gid)" }
        return String(cString: name)
    }

    static func isInUserNamespace() -> Bool {
        guard let map = readFile("/proc/self/uid_map") else { return false }
        let fields = map.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return !(fields.count == 3 && fields[0] == "0" && fields[1] == "0" && fields[2] == "4294967295")
    }

    static func readNumber(_ path: String) -> Int? {
        readFile(path).flatMap { Int($0.split(separator: "\n").first ?? "") }
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }
}
