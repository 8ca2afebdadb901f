import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells systemd how the service is doing, through the `sd_notify` protocol.
///
/// Every call is a no-op when `NOTIFY_SOCKET` is not set (not started by systemd with
/// `Type=notify`, or started by hand). The environment is read on every call and never
/// unset, so a child process (a hook) could inherit it; hooks are expected not to notify.
///
/// Guarantees: a datagram has been handed to the kernel when a call returns `true`.
/// Non-guarantees: systemd may still drop it (for example `NotifyAccess=main` and a message
/// from another process); nothing here retries.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// `true` when `NOTIFY_SOCKET` is set, i.e. systemd is listening.
    public var isEnabled: Bool {
        guard let value = getenv("NOTIFY_SOCKET") else { return false }
        return value.pointee != 0
    }

    /// `READY=1`: start-up is complete (sockets bound, first state known).
    @discardableResult
    public func ready() -> Bool { send("READY=1") }

    /// `STATUS=…`: a one-line summary shown by `systemctl status`.
    /// Line breaks in `line` are replaced by spaces so the message stays one field.
    @discardableResult
    public func status(_ line: String) -> Bool {
        send("STATUS=" + Self.oneLine(line))
    }

    /// `WATCHDOG=1`: the keep-alive ping; send it every ``watchdogInterval``.
    @discardableResult
    public func watchdog() -> Bool { send("WATCHDOG=1") }

    /// `RELOADING=1` with `MONOTONIC_USEC` (systemd 253 and later match a reload by it; 252
    /// ignores it): a reload has begun. Follow it with `READY=1` when it is over, applied or not.
    @discardableResult
    public func reloading() -> Bool {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
        return send("RELOADING=1\nMONOTONIC_USEC=\(usec)\nSTATUS=reloading the configuration")
    }

    /// `STOPPING=1`: the service is shutting down (dispatching).
    @discardableResult
    public func stopping() -> Bool { send("STOPPING=1") }

    /// How often to call ``watchdog()``: half of `WATCHDOG_USEC`, or `nil` when the watchdog
    /// is off (no `WatchdogSec=`, or `WATCHDOG_PID` names another process).
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec / 2))
    }

    /// Sends one raw state string (`KEY=value` lines). Returns `true` when it was sent.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, state) > 0
    }

    public static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
