import Logging
import QuorumTestSupport
import Testing
@testable import QuorumSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ProcessWideStateTests {
@Suite("systemd notify and environment")
struct SystemdEnvironmentTests {
    @Test("ready, status, watchdog and stopping arrive at NOTIFY_SOCKET as systemd reads them")
    func notifyMessagesReachTheSocket() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let systemd = try FakeNotifySocket(directory: directory)
        setenv("NOTIFY_SOCKET", systemd.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }

        let notifier = SystemdNotifier()
        #expect(notifier.isEnabled)
        #expect(notifier.ready())
        #expect(systemd.receive() == "READY=1")
        #expect(notifier.status("master: B, 3 members\nsecond line"))
        #expect(systemd.receive() == "STATUS=master: B, 3 members second line")
        #expect(notifier.watchdog())
        #expect(systemd.receive() == "WATCHDOG=1")
        #expect(notifier.stopping())
        #expect(systemd.receive() == "STOPPING=1")
    }

    @Test("without NOTIFY_SOCKET every call is a no-op")
    func noSocketNoOp() {
        unsetenv("NOTIFY_SOCKET")
        let notifier = SystemdNotifier()
        #expect(!notifier.isEnabled)
        #expect(!notifier.ready())
        #expect(!notifier.status("x"))
        #expect(!notifier.stopping())
    }

    @Test("watchdog interval is half of WATCHDOG_USEC, nil when off or for another pid")
    func watchdogInterval() {
        defer { unsetenv("WATCHDOG_USEC"); unsetenv("WATCHDOG_PID") }
        unsetenv("WATCHDOG_USEC"); unsetenv("WATCHDOG_PID")
        #expect(SystemdNotifier().watchdogInterval == nil)

        setenv("WATCHDOG_USEC", "3000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        #expect(SystemdNotifier().watchdogInterval == .milliseconds(1500))

        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        #expect(SystemdNotifier().watchdogInterval == nil)
    }

    @Test("the journal is chosen only when JOURNAL_STREAM names fd 2 itself")
    func journalStreamDetection() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/stream"
        try writeTextFile(path, "")
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var info = stat()
        #expect(fstat(fd, &info) == 0)

        #expect(LogOutput.detect(journalStream: "\(info.st_dev):\(info.st_ino)", fileDescriptor: fd) == .journal)
        #expect(LogOutput.detect(journalStream: "\(info.st_dev):\(info.st_ino + 1)", fileDescriptor: fd) == .standardError)
        #expect(LogOutput.detect(journalStream: nil, fileDescriptor: fd) == .standardError)
        #expect(LogOutput.detect(journalStream: "garbage", fileDescriptor: fd) == .standardError)

        // The process-wide variant: a JOURNAL_STREAM inherited from elsewhere does not match fd 2.
        setenv("JOURNAL_STREAM", "1:1", 1)
        defer { unsetenv("JOURNAL_STREAM") }
        #expect(LogOutput.detect() == .standardError)
    }
}

}

@Suite("journald fields")
struct JournalFieldTests {
    @Test("metadata keys become journald field names", arguments: [
        ("quorum.master", "QUORUM_MASTER"),
        ("quorum.epoch", "QUORUM_EPOCH"),
        ("QUORUM_NODE", "QUORUM_NODE"),
        ("peer-name", "PEER_NAME"),
        ("héllo", "H_LLO"),
        ("_private", "QUORUM__PRIVATE"),
        ("9lives", "QUORUM_9LIVES"),
        ("", "QUORUM_"),
        ("message", "QUORUM_MESSAGE"),
        ("priority", "QUORUM_PRIORITY"),
    ])
    func fieldNames(key: String, expected: String) {
        #expect(JournalFieldName.make(key) == expected)
    }

    @Test("field names are at most 64 characters")
    func longKeysAreCut() {
        let name = JournalFieldName.make(String(repeating: "a.", count: 50))
        #expect(name.count == 64)
        #expect(name.allSatisfy { $0.isUppercase || $0 == "_" })
    }

    @Test("an entry carries MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, mapped metadata and MESSAGE_ID as is")
    func entryFields() {
        let fields = JournalLogHandler.fields(
            level: .notice, message: "B set A as new master",
            metadata: ["quorum.master": "A", "quorum.epoch": "7", "MESSAGE_ID": "4f1c0a2e6b3d4b8e9a7c5d3e1f2a4b6c"])
        #expect(fields == [
            "MESSAGE=B set A as new master",
            "PRIORITY=5",
            "SYSLOG_IDENTIFIER=quorumd",
            "MESSAGE_ID=4f1c0a2e6b3d4b8e9a7c5d3e1f2a4b6c",
            "QUORUM_EPOCH=7",
            "QUORUM_MASTER=A",
        ])
    }

    @Test("swift-log levels map to syslog priorities")
    func priorities() {
        #expect(Logger.Level.allCases.map(JournalLogHandler.priority(for:)) == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test("sending to the journal does not fail when journald is absent")
    func sendingIsHarmless() {
        var logger = Logger(label: "test") { _ in JournalLogHandler(logLevel: .debug) }
        logger[metadataKey: "quorum.node"] = "B"
        logger.debug("journal handler smoke test", metadata: ["quorum.epoch": "1"])
    }
}

@Suite("standard error lines")
struct StandardErrorFormatTests {
    @Test("one line: level, message, then sorted metadata")
    func format() {
        #expect(StandardErrorLogHandler.format(level: .info, message: "B set A as new master", metadata: [:])
            == "info B set A as new master")
        #expect(StandardErrorLogHandler.format(level: .debug, message: "two\nlines", metadata: ["b": "2", "a": "x\ny"])
            == "debug two\\nlines a=x\\ny b=2")
    }

    @Test("metadata is written at debug level, or when asked, not otherwise")
    func metadataOnlyWhenDebug() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeTree(directory) }
        let path = directory + "/err"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }

        let quiet = Logger(label: "q") { _ in StandardErrorLogHandler(logLevel: .info, fileDescriptor: fd) }
        quiet.info("hello", metadata: ["quorum.node": "B"])
        quiet.debug("hidden")
        let loud = Logger(label: "l") { _ in StandardErrorLogHandler(logLevel: .debug, fileDescriptor: fd) }
        loud.debug("shown", metadata: ["quorum.node": "B"])
        let asked = Logger(label: "a") { _ in StandardErrorLogHandler(logLevel: .info, showMetadata: true, fileDescriptor: fd) }
        asked.warning("asked", metadata: ["k": "v"])

        // Each line starts with the time (HH:MM:SS.mmm) and a space.
        let lines = (readTextFile(path) ?? "").split(separator: "\n").map { line -> String in
            #expect(line.count > 13 && line.dropFirst(2).first == ":" && line.dropFirst(8).first == ".")
            return String(line.dropFirst(13))
        }
        #expect(lines == ["info hello", "debug shown quorum.node=B", "warning asked k=v"])
    }

    @Test("Handlers follow the shared level as it changes (a reload), unless their logger set one")
    func levels() {
        let setting = LogLevelSetting(.info)
        var stderr = LogOutput.standardError.makeHandler(level: setting)
        let journal = LogOutput.journal.makeHandler(level: setting)
        #expect(journal is JournalLogHandler)
        #expect(stderr.logLevel == .info && journal.logLevel == .info)
        setting.level = .trace
        #expect(stderr.logLevel == .trace && journal.logLevel == .trace)
        stderr.logLevel = .error
        setting.level = .debug
        #expect(stderr.logLevel == .error)
        #expect(journal.logLevel == .debug)
    }
}
