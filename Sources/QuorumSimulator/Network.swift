import QuorumCore

/// The simulated network, as the shell sees TCP and UDP.
///
/// Links are between slots (hosts), so two processes with one name are two ends. Frames on
/// a link arrive in order after a small random delay; a cut (partition) silently drops
/// frames, and a link that carried nothing acknowledged for `linkTimeout` is aborted at both
/// ends; connection attempts across a cut, or to a paused or suspended host, time out; to a
/// crashed process's port they are refused. A link the core refuses (`Directive.refuseLink`)
/// is closed at once: the refuser reads nothing more from it.
extension World {
    mutating func broadcast(_ a: Announce, from i: Int) {
        for j in slots.indices where j != i && !blocked.contains(Pair(from: i, to: j)) {
            if datagramLoss > 0, Double(rng.next() % 10_000) / 10_000 < datagramLoss { continue }
            queue.push(at: now + randomDelay(), .event(node: j, generation: slots[j].generation, .datagram(a)))
        }
    }

    /// Whether the path between slots `a` and `b` is cut in either direction.
    func isCut(_ a: Int, _ b: Int) -> Bool {
        blocked.contains(Pair(from: a, to: b)) || blocked.contains(Pair(from: b, to: a))
    }

    /// The slot with this name to which `i` has an open link (the newest, if two are open).
    func linkedSlot(named name: String, from i: Int) -> (slot: Int, link: UInt64)? {
        var best: (Int, UInt64)? = nil
        for j in slots.indices where slots[j].name == name {
            if let id = links[Pair(from: i, to: j)], best.map({ id > $0.1 }) ?? true { best = (j, id) }
        }
        return best
    }

    mutating func send(_ m: Message, to name: String, from i: Int) {
        guard let (j, link) = linkedSlot(named: name, from: i) else { return }
        let pair = Pair(from: i, to: j)
        if blocked.contains(pair) {
            let since = cutSince[pair] ?? now
            cutSince[pair] = since
            if now - since >= config.timing.linkTimeout { abortLink(i, j) }
            return
        }
        cutSince[pair] = nil
        queue.push(at: fifoTime(pair), .frame(node: j, generation: slots[j].generation, link: link, m, from: slots[i].name))
    }

    /// Now plus a delay, but never before the last frame on the same link.
    mutating func fifoTime(_ pair: Pair) -> Instant {
        var at = now + randomDelay()
        if let last = linkClock[pair], at < last { at = last }
        linkClock[pair] = at
        return at
    }

    /// A connection attempt reaches whatever listens at the target's address and port.
    mutating func connect(from i: Int, target: NodeIdentity) {
        guard let j = slots.indices.first(where: { slots[$0].address == target.address && slots[$0].port == target.port }), j != i else { return }
        let gen = slots[i].generation
        let cut = isCut(i, j)
        func fail(_ loss: LinkLoss, after: Duration) {
            queue.push(at: now + after, .event(node: i, generation: gen, .linkDown(name: target.name, instance: target.instance, loss)))
        }
        switch slots[j].status {
        case .crashed, .stopped:
            if cut { fail(.unreachable, after: config.timing.connectTimeout) } else { fail(.refused, after: randomDelay()) }
        case .paused, .suspended:
            fail(.unreachable, after: config.timing.connectTimeout)
        case .running:
            if cut { return fail(.unreachable, after: config.timing.connectTimeout) }
            guard let nodeA = slots[i].instance, let nodeB = slots[j].instance else { return }
            let (a, b) = (nodeA.identity, nodeB.identity)
            func speaks(_ node: QuorumInstance) -> ProtocolRange {
                ProtocolRange(lowest: WireFormat.lowestVersion, highest: node.configuration.protocolVersion)
            }
            let id = nextLinkID
            nextLinkID += 1
            links[Pair(from: i, to: j)] = id
            links[Pair(from: j, to: i)] = id
            let t = now + randomDelay()
            queue.push(at: t, .event(node: i, generation: gen, .linkUp(b, speaks: speaks(nodeB))))
            queue.push(at: t, .event(node: j, generation: slots[j].generation, .linkUp(a, speaks: speaks(nodeA))))
        }
    }

    /// The core of `i` refuses the link just reported up with `identity`: for `nameTaken`
    /// the refused process reads the refusal, then the link closes; it closes only for the
    /// refused side, since the refuser never registered it.
    mutating func refuseLink(_ identity: NodeIdentity, _ refusal: LinkRefusal, by i: Int) {
        guard let j = slots.indices.first(where: { j in
            links[Pair(from: i, to: j)] != nil && slots[j].instance?.identity.instance == identity.instance && slots[j].name == identity.name
        }), let link = links[Pair(from: i, to: j)], let me = slots[i].instance?.identity else { return }
        if trace.enabled { log("\(slots[i].name) refuses the link of \(identity): \(refusal)") }
        refusedLinks[link] = i
        let pair = Pair(from: i, to: j)
        if case .nameTaken(let holder) = refusal {
            queue.push(at: fifoTime(pair), .frame(node: j, generation: slots[j].generation, link: link, .nameTaken(holder: holder), from: me.name))
        }
        let at = fifoTime(pair)
        closeLink(i, j)
        queue.push(at: at, .event(node: j, generation: slots[j].generation, .linkDown(name: me.name, instance: me.instance, .closed)))
    }

    /// The link between i and j carried nothing acknowledged for the link timeout: both
    /// kernels abort it, and both cores hear a closed link.
    mutating func abortLink(_ i: Int, _ j: Int) {
        closeLink(i, j)
        if trace.enabled { log("link \(slots[i].name)–\(slots[j].name) aborted: unacknowledged for \(config.timing.linkTimeout)") }
        for (a, b) in [(i, j), (j, i)] {
            guard let peer = slots[b].instance?.identity else { continue }
            queue.push(at: now + randomDelay(), .event(node: a, generation: slots[a].generation, .linkDown(name: peer.name, instance: peer.instance, .closed)))
        }
    }

    /// Forgets the link between i and j, both directions, with any cut it was under.
    mutating func closeLink(_ i: Int, _ j: Int) {
        for pair in [Pair(from: i, to: j), Pair(from: j, to: i)] {
            links[pair] = nil
            cutSince[pair] = nil
        }
    }

    /// Blocks every pair across the groups (a slot in no group joins a random one).
    mutating func partition(_ groups: [[Int]]) {
        var side: [Int: Int] = [:]
        for (g, members) in groups.enumerated() { for m in members { side[m] = g } }
        for i in slots.indices where side[i] == nil { side[i] = Int.random(in: 0..<groups.count, using: &rng) }
        blocked = []
        for a in slots.indices { for b in slots.indices where side[a] != side[b] { blocked.insert(Pair(from: a, to: b)) } }
    }
}
