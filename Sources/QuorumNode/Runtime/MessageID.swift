/// The journal's `MESSAGE_ID` of each kind of entry an operator may want to find or be told
/// more about (`journalctl MESSAGE_ID=…`, `journalctl -x`). Each was made once with
/// `systemd-id128 new` and never changes; packaging/systemd/quorum.catalog explains each
/// (a test keeps the two lists equal).
public enum MessageID: String, CaseIterable, Sendable {
    case masterChanged = "8c1b7e4a3f2d4a6e9b5c0d1e2f3a4b5c"
    case masterGone = "218942da6ee64785847668d39174d4ff"
    case roleChanged = "8befeef76be54c7ca47cb3535c8d3bc5"
    case peerJoined = "75eb42fa90614634b72ec6f746a29a41"
    case peerLost = "3c33e79013624d928b537ce8fe37c3de"
    case peerLeft = "e40cb13798f8454594dbbdf068aca9fd"
    case peerForgotten = "9db2f4021c5e4eeeb917cc6e16e083f9"
    case peerReentered = "75ae5de97e6d4a5186f26694a65376e4"
    case membershipChanged = "f558f412474145dbac348575281d9878"
    case hookSucceeded = "cb7ce8fd9b4e44498a603bf8f9469ea0"
    case hookFailed = "4c6105dc20a94ac08e51cfecc9735e92"
    case hookSkipped = "7cde70262f5442ccb6551a9f9fb9abbb"
    case reloaded = "5b0e2c9d41a74f0c8e7a2f3d9c6b1e48"
    case reloadRefused = "c3a91f6e08b24d57a1e6d2b07f4c9a35"
    case metricsNotListening = "7e2d4b91c05a4f38b6e1d9a3c4f8e215"
    case standbyChanged = "b1da79c7b4194a98bcf8c101d9ff55da"
    case checkFailing = "c90cd5970a674073895ac5aca3c89754"
    case checkPassing = "2313b592d5ce40d7be248ad323ad8dd1"
}
