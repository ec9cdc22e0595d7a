/// A first-in, first-out queue: the first element is kept inline (a unary call's one message never
/// allocates queue storage), the rest on an array with a moving head: O(1) pops, storage reused once drained.
struct FIFO<Element> {
    private var first: Element?
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { first == nil }
    var count: Int { first == nil ? 0 : 1 + storage.count - head }

    mutating func append(_ element: Element) {
        if first == nil {
            first = element
        } else {
            storage.append(element)
        }
    }

    mutating func popFirst() -> Element? {
        guard let element = first else { return nil }
        if head < storage.count {
            first = storage[head]
            head += 1
            if head == storage.count {
                storage.removeAll(keepingCapacity: true)
                head = 0
            }
        } else {
            first = nil
        }
        return element
    }

    mutating func removeAll() {
        first = nil
        storage.removeAll()
        head = 0
    }
}
