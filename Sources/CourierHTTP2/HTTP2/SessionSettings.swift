internal import CNGHTTP2

/// The first SETTINGS a Courier endpoint sends, and its connection-level receive window.
struct SessionSettings {
    var maxConcurrentStreams: Int?
    var enablePush: Bool?
    var streamWindowBytes: Int
    var maxHeaderListBytes: Int
    var connectionWindowBytes: Int

    /// Queues the SETTINGS frame and opens the connection window; sent with the next flush.
    func submit(to session: OpaquePointer?) {
        var entries: [nghttp2_settings_entry] = []
        if let maxConcurrentStreams {
            entries.append(
                .init(
                    settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                    value: UInt32(maxConcurrentStreams)
                )
            )
        }
        if let enablePush {
            entries.append(.init(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: enablePush ? 1 : 0))
        }
        entries.append(
            .init(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(streamWindowBytes)
            )
        )
        entries.append(
            .init(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(maxHeaderListBytes)
            )
        )
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        nghttp2_session_set_local_window_size(
            session,
            UInt8(NGHTTP2_FLAG_NONE.rawValue),
            0,
            Int32(connectionWindowBytes)
        )
    }
}
