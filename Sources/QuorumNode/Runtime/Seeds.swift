import NIOCore
import NIOPosix
import QuorumControl
import QuorumCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The seeds (`--peer`): peers found by dialling a name or address over TCP, beside broadcast
/// discovery. A seed is a way to find a peer, not a member: once its link's handshake is
/// done the core knows the peer like any other, and keeps the link up by its own rules.
///
/// Each seed is resolved off the event loop (`getaddrinfo` blocks), every address it
/// resolves to is tried in turn, and a seed whose peer is not linked is dialled again (after
/// 1 s, backing off to 5 s) and resolved again when its resolution is older than
/// `--peer-resolve-interval`, or at once (at most once a second) after a round of dials
/// that all failed: a peer that moved to a new address under its name comes back. Nothing
/// about a seed ever stops the node. A seed that leads back to this very node is left alone.
///
/// Concurrency: confined to the node's event loop, like the ``Transport`` it dials through.
final class SeedDialer {
    enum State: String {
        case unresolved, resolving, connecting, connected, refused, unreachable
        case own = "self"
    }

    struct Seed {
        /// Names the seed in callbacks that outlive a reload's new list.
        let id: Int
        let spec: SeedSpec
        let port: UInt16
        var addresses: [SocketAddress] = []
        var state: State = .unresolved
        var peer: String? = nil
        var lastError: String? = nil
        var resolvedAt: NIODeadline? = nil
        var resolvedWallMilliseconds: Int64? = nil
        var resolving = false
        /// Resolve again before the next dial (a whole round of dials failed).
        var resolveSoon = false
        var nextResolve = NIODeadline.uptimeNanoseconds(0)
        var dialing = false
        /// The next address to dial, as an index into `addresses`.
        var nextAddress = 0
        var nextDial = NIODeadline.uptimeNanoseconds(0)
        var backoff: TimeAmount = SeedDialer.firstBackoff
        var wasLinked = false
    }

    static let firstBackoff: TimeAmount = .seconds(1)
    static let lastBackoff: TimeAmount = .seconds(5)
    /// The shortest time between two resolutions of one seed.
    static let resolveFloor: TimeAmount = .seconds(1)
    static let tickInterval: TimeAmount = .milliseconds(100)

    let loop: EventLoop
    unowned let transport: Transport
    let notices: Notices
    private let pool: NIOThreadPool
    private var resolveInterval: TimeAmount
    private(set) var seeds: [Seed]
    private var task: RepeatedTask?
    private var nextID = 0
    /// The bound peer port, the port of seeds given without one (known once started).
    private var ownPort: UInt16?

    init(loop: EventLoop, transport: Transport, notices: Notices, settings: NodeSettings, pool: NIOThreadPool = NIOSingletons.posixBlockingThreadPool) {
        self.loop = loop
        self.transport = transport
        self.notices = notices
        self.pool = pool
        resolveInterval = .nanoseconds(settings.peerResolveInterval.nanosecondsClamped)
        seeds = []
        seeds = settings.seeds.map(makeSeed)
    }

    private func makeSeed(_ spec: SeedSpec) -> Seed {
        nextID += 1
        return Seed(id: nextID, spec: spec, port: spec.port ?? ownPort ?? 0)
    }

    /// Starts dialling, with `port` (the bound peer port) for seeds given without one.
    func start(ownPort: UInt16) {
        self.ownPort = ownPort
        for i in seeds.indices where seeds[i].spec.port == nil { seeds[i] = Seed(id: seeds[i].id, spec: seeds[i].spec, port: ownPort) }
        guard !seeds.isEmpty, task == nil else { return }
        task = loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.tickInterval) { [weak self] _ in self?.tick() }
    }

    /// A reload's list: a seed that stays keeps its state (its resolution, its peer), a new
    /// one starts afresh, a removed one is dropped (its link, if any, stays: the core keeps
    /// peers by its own rules).
    func replace(with specs: [SeedSpec], resolveInterval interval: Duration) {
        resolveInterval = .nanoseconds(interval.nanosecondsClamped)
        var old = seeds
        seeds = specs.map { spec in
            if let i = old.firstIndex(where: { $0.spec == spec }) { return old.remove(at: i) }
            return makeSeed(spec)
        }
        if seeds.isEmpty {
            stop()
        } else if let ownPort {
            start(ownPort: ownPort)
        }
    }

    private func index(_ id: Int) -> Int? { seeds.firstIndex { $0.id == id } }

    func stop() {
        task?.cancel()
        task = nil
    }

    // MARK: - The loop

    func tick() {
        let now = NIODeadline.now()
        for i in seeds.indices {
            if seeds[i].state == .own || seeds[i].resolving || seeds[i].dialing { continue }
            if let peer = seeds[i].peer, transport.isLinked(peer) {
                seeds[i].state = .connected
                seeds[i].wasLinked = true
                seeds[i].backoff = Self.firstBackoff
                continue
            }
            if seeds[i].wasLinked {
                // Its peer's link is down: the core dials the peer's own address first.
                seeds[i].wasLinked = false
                seeds[i].state = .connecting
                seeds[i].nextDial = now + seeds[i].backoff
                continue
            }
            let stale = seeds[i].resolvedAt.map { now - $0 >= resolveInterval } ?? true
            if seeds[i].addresses.isEmpty || stale || seeds[i].resolveSoon {
                if now >= seeds[i].nextResolve { resolve(i, now: now) }
                if seeds[i].addresses.isEmpty { continue }
            }
            if now >= seeds[i].nextDial { dial(i) }
        }
    }

    private func resolve(_ i: Int, now: NIODeadline) {
        let seed = seeds[i]
        seeds[i].resolving = true
        seeds[i].nextResolve = now + Self.resolveFloor
        if seed.addresses.isEmpty { seeds[i].state = .resolving }
        let host = seed.spec.host, port = seed.port, literal = seed.spec.isLiteral, id = seed.id
        pool.runIfActive(eventLoop: loop) {
            try Resolver.addresses(host: host, port: port, numeric: literal)
        }.assumeIsolated().whenComplete { result in
            self.resolved(id, result)
        }
    }

    private func resolved(_ id: Int, _ result: Result<[SocketAddress], Error>) {
        guard let i = index(id) else { return }
        seeds[i].resolving = false
        seeds[i].resolveSoon = false
        seeds[i].resolvedAt = .now()
        seeds[i].resolvedWallMilliseconds = Int64(BootClock.wallClockMilliseconds())
        switch result {
        case .success(let addresses):
            if addresses != seeds[i].addresses {
                seeds[i].addresses = addresses
                seeds[i].nextAddress = 0
                seeds[i].nextDial = .now()
                if seeds[i].state == .own || seeds[i].state == .resolving || seeds[i].state == .unresolved { seeds[i].state = .connecting }
            }
        case .failure(let error):
            seeds[i].lastError = "\(error)"
            if seeds[i].addresses.isEmpty { seeds[i].state = .unresolved }
            notices.seedUnresolved(seeds[i].spec.text, error: "\(error)")
        }
    }

    private func dial(_ i: Int) {
        let address = seeds[i].addresses[seeds[i].nextAddress % seeds[i].addresses.count]
        seeds[i].dialing = true
        if seeds[i].state != .refused && seeds[i].state != .unreachable { seeds[i].state = .connecting }
        transport.dial(seed: seeds[i].id, to: address)
    }

    // MARK: - From the transport

    /// A dial through seed `id` completed its handshake with `peer`.
    func reached(_ id: Int, peer: String) {
        guard let i = index(id) else { return }
        seeds[i].dialing = false
        seeds[i].peer = peer
        seeds[i].state = .connected
        seeds[i].lastError = nil
        seeds[i].nextAddress = 0
        seeds[i].backoff = Self.firstBackoff
    }

    /// A dial through seed `id` reached this very process: it is skipped from now on (until it
    /// resolves to other addresses).
    func reachedSelf(_ id: Int) {
        guard let i = index(id) else { return }
        seeds[i].dialing = false
        seeds[i].state = .own
        seeds[i].peer = nil
    }

    /// A dial through seed `id` failed: the next address is tried at once; after a whole
    /// round, the seed waits its back-off and is resolved again first.
    func failed(_ id: Int, refused: Bool, error: String) {
        guard let i = index(id) else { return }
        let now = NIODeadline.now()
        seeds[i].dialing = false
        seeds[i].state = refused ? .refused : .unreachable
        seeds[i].lastError = error
        seeds[i].nextAddress += 1
        if seeds[i].nextAddress >= seeds[i].addresses.count {
            seeds[i].nextAddress = 0
            seeds[i].nextDial = now + seeds[i].backoff
            seeds[i].backoff = min(seeds[i].backoff * 2, Self.lastBackoff)
            seeds[i].resolveSoon = !seeds[i].spec.isLiteral
        } else {
            seeds[i].nextDial = now
        }
    }

    // MARK: - Reports

    var reports: [SeedReport] {
        seeds.map { s in
            SeedReport(
                spec: s.spec.text, addresses: s.addresses.map(Self.describe), state: s.state.rawValue, peer: s.peer,
                lastError: s.lastError, lastResolvedMilliseconds: s.resolvedWallMilliseconds)
        }
    }

    /// `192.0.2.1:6170`, `[2001:db8::1]:6170`.
    static func describe(_ address: SocketAddress) -> String {
        NodeIdentity.endpoint(address.ipAddress ?? "?", UInt16(clamping: address.port ?? 0))
    }
}

/// Every address a host name resolves to, through the system's resolver (`getaddrinfo`, so
/// `/etc/hosts`, DNS and zones), as NIO socket addresses. Blocking: call off the event loop.
enum Resolver {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func addresses(host: String, port: UInt16, numeric: Bool) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        if numeric { hints.ai_flags = AI_NUMERICHOST }
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0 else { throw Failure(description: String(cString: gai_strerror(rc))) }
        defer { freeaddrinfo(result) }
        var found: [SocketAddress] = []
        var entry = result
        while let info = entry {
            if let raw = info.pointee.ai_addr {
                let address: SocketAddress?
                switch info.pointee.ai_family {
                case AF_INET: address = SocketAddress(raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }, host: host)
                case AF_INET6: address = SocketAddress(raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }, host: host)
                default: address = nil
                }
                if let address, !found.contains(address) { found.append(address) }
            }
            entry = info.pointee.ai_next
        }
        guard !found.isEmpty else { throw Failure(description: "no IPv4 or IPv6 address") }
        return found
    }
}
