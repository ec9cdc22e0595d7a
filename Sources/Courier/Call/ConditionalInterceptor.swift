/// An interceptor with the methods it applies to: every method, some services, some methods, or those
/// a predicate picks. Give a list of them to ``CourierClient`` or ``CourierServer`` instead of plain
/// interceptors; the check is Courier's, not the interceptor's.
///
/// ```swift
/// let interceptors: [ConditionalInterceptor<any ServerInterceptor>] = [
///     .apply(LoggingInterceptor(), to: .all),
///     .apply(AdminAuthInterceptor(), to: .services(["admin.Admin"])),
///     .apply(AuditInterceptor(), to: .all.excluding(methods: [Health.check])),
/// ]
/// let server = CourierServer(transport: transport, services: services, interceptors: interceptors)
/// ```
///
/// A server decides once per method, when it starts (its router knows every method), so a call pays
/// nothing for the condition; a client decides the first time it calls a method and remembers.
public struct ConditionalInterceptor<Interceptor: Sendable>: Sendable {
    /// The methods an interceptor applies to. Subjects combine: ``union(_:)``, ``excluding(_:)``.
    public struct Subject: Sendable {
        private enum Rule: Sendable {
            case all
            case services(Set<String>)
            case methods(Set<String>)  // paths
            case predicate(@Sendable (MethodDescriptor) -> Bool)
            indirect case union(Rule, Rule)
            indirect case excluding(Rule, Rule)

            func matches(_ descriptor: MethodDescriptor) -> Bool {
                switch self {
                case .all: true
                case .services(let names): names.contains(descriptor.service.fullyQualifiedService)
                case .methods(let paths): paths.contains(descriptor.path)
                case .predicate(let predicate): predicate(descriptor)
                case .union(let a, let b): a.matches(descriptor) || b.matches(descriptor)
                case .excluding(let a, let b): a.matches(descriptor) && !b.matches(descriptor)
                }
            }

            var isAll: Bool { if case .all = self { true } else { false } }
        }

        private let rule: Rule

        private init(_ rule: Rule) { self.rule = rule }

        /// Every method.
        public static var all: Subject { Subject(.all) }

        /// Every method of these services.
        ///
        /// - Parameter services: The services.
        public static func services(_ services: some Sequence<ServiceDescriptor>) -> Subject {
            Subject(.services(Set(services.map(\.fullyQualifiedService))))
        }

        /// Every method of the services with these fully-qualified names, such as `"echo.Echo"`.
        ///
        /// - Parameter names: The services' names.
        public static func services(_ names: some Sequence<String>) -> Subject {
            Subject(.services(Set(names)))
        }

        /// These methods.
        ///
        /// - Parameter methods: The methods.
        public static func methods(_ methods: some Sequence<MethodDescriptor>) -> Subject {
            Subject(.methods(Set(methods.map(\.path))))
        }

        /// The methods of these services, and these methods.
        ///
        /// - Parameters:
        ///   - services: The services.
        ///   - methods: More methods.
        public static func only(
            services: some Sequence<ServiceDescriptor>,
            methods: some Sequence<MethodDescriptor>
        )
            -> Subject
        {
            Self.services(services).union(Self.methods(methods))
        }

        /// The methods `predicate` returns true for. It must be deterministic: it is asked once per method.
        ///
        /// - Parameter predicate: Decides for a method.
        public static func matching(_ predicate: @escaping @Sendable (MethodDescriptor) -> Bool) -> Subject {
            Subject(.predicate(predicate))
        }

        /// The methods of this subject or of `other`.
        ///
        /// - Parameter other: Another subject.
        public func union(_ other: Subject) -> Subject { Subject(.union(rule, other.rule)) }

        /// The methods of this subject that are not in `other`.
        ///
        /// - Parameter other: The methods to leave out.
        public func excluding(_ other: Subject) -> Subject { Subject(.excluding(rule, other.rule)) }

        /// The methods of this subject except these services' and these methods.
        ///
        /// - Parameters:
        ///   - services: Services to leave out.
        ///   - methods: Methods to leave out.
        public func excluding(
            services: some Sequence<ServiceDescriptor> = [],
            methods: some Sequence<MethodDescriptor> = []
        ) -> Subject {
            excluding(.only(services: services, methods: methods))
        }

        /// Whether the subject includes `descriptor`.
        ///
        /// - Parameter descriptor: A method.
        public func contains(_ descriptor: MethodDescriptor) -> Bool { rule.matches(descriptor) }

        var isAll: Bool { rule.isAll }
    }

    /// The interceptor.
    public let interceptor: Interceptor
    /// The methods it applies to.
    public let subject: Subject

    private init(interceptor: Interceptor, subject: Subject) {
        self.interceptor = interceptor
        self.subject = subject
    }
}

extension ConditionalInterceptor where Interceptor == any ClientInterceptor {
    /// A client interceptor for the methods of `subject`.
    ///
    /// - Parameters:
    ///   - interceptor: The interceptor.
    ///   - subject: The methods it applies to.
    public static func apply(_ interceptor: any ClientInterceptor, to subject: Subject) -> Self {
        Self(interceptor: interceptor, subject: subject)
    }
}

extension ConditionalInterceptor where Interceptor == any ServerInterceptor {
    /// A server interceptor for the methods of `subject`.
    ///
    /// - Parameters:
    ///   - interceptor: The interceptor.
    ///   - subject: The methods it applies to.
    public static func apply(_ interceptor: any ServerInterceptor, to subject: Subject) -> Self {
        Self(interceptor: interceptor, subject: subject)
    }
}

/// The interceptors of `conditional` that apply to `descriptor` (`nil`: every one, whatever its subject)
/// and do something, in order: one that would pass every RPC straight on (``PassThroughReporting``) is
/// left out, so that it costs nothing.
func interceptors<I: Sendable>(
    _ conditional: [ConditionalInterceptor<I>],
    applyingTo descriptor: MethodDescriptor?
) -> [I] {
    conditional.compactMap { entry in
        if let descriptor, !entry.subject.contains(descriptor) { return nil }
        if let reporting = entry.interceptor as? any PassThroughReporting, reporting.passesEveryRPCThrough {
            return nil
        }
        return entry.interceptor
    }
}
