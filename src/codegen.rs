//! The service generator for `build.rs` (feature `codegen`): prost-build plus our server
//! and client code.
//!
#![doc = include_str!("codegen.md")]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// Writes the server and client code for each service. Register it with
/// `prost_build::Config::service_generator`, or let [`compile_protos`] do it.
#[derive(Debug, Clone)]
pub struct ServiceGenerator {
    runtime: String,
    /// The compiled files by name, for each package's `FILE_DESCRIPTOR_SET`.
    files: BTreeMap<String, FileDescriptorProto>,
}

impl Default for ServiceGenerator {
    fn default() -> Self {
        ServiceGenerator::new()
    }
}

impl ServiceGenerator {
    /// A generator whose code refers to the runtime as `::h2grpc`.
    pub fn new() -> ServiceGenerator {
        ServiceGenerator {
            runtime: "::h2grpc".to_owned(),
            files: BTreeMap::new(),
        }
    }

    /// Embed, in each package's module, `FILE_DESCRIPTOR_SET`: the package's files of
    /// `descriptors` with all they import (see the module docs). [`compile_protos`] and
    /// [`compile_fds`] do this; without it no constant is written.
    pub fn file_descriptor_set(mut self, descriptors: &FileDescriptorSet) -> ServiceGenerator {
        for file in &descriptors.file {
            let mut file = file.clone();
            file.source_code_info = None;
            self.files.insert(file.name().to_owned(), file);
        }
        self
    }

    /// The encoded set of `package`'s files and their imports, each import before the
    /// files importing it; `None` when no file of `package` is known.
    fn package_descriptor_set(&self, package: &str) -> Option<Vec<u8>> {
        fn visit<'a>(
            files: &'a BTreeMap<String, FileDescriptorProto>,
            name: &'a str,
            seen: &mut BTreeSet<&'a str>,
            out: &mut Vec<FileDescriptorProto>,
        ) {
            let Some(file) = files.get(name) else { return };
            if !seen.insert(name) {
                return;
            }
            for dependency in &file.dependency {
                visit(files, dependency, seen, out);
            }
            out.push(file.clone());
        }
        let mut seen = BTreeSet::new();
        let mut set = FileDescriptorSet::default();
        for (name, file) in &self.files {
            if file.package() == package {
                visit(&self.files, name, &mut seen, &mut set.file);
            }
        }
        (!set.file.is_empty()).then(|| set.encode_to_vec())
    }

    /// Refer to the runtime by another path (when the crate is renamed in `Cargo.toml`).
    pub fn runtime_path(mut self, path: impl Into<String>) -> ServiceGenerator {
        self.runtime = path.into();
        self
    }
}

/// A prost-build `Config` set up for this runtime: our [`ServiceGenerator`], and the
/// message code pointed at the `prost` that `h2grpc` re-exports, so the crate using the
/// generated code needs no `prost` dependency of its own.
pub fn config() -> prost_build::Config {
    config_for(ServiceGenerator::new())
}

/// [`config`] with a generator of your own (another runtime path, say).
pub fn config_for(generator: ServiceGenerator) -> prost_build::Config {
    let mut config = prost_build::Config::new();
    config.prost_path(format!("{}::prost", generator.runtime));
    config.service_generator(Box::new(generator));
    config
}

/// Compile `protos` (found under `includes`) with protox and prost-build plus this
/// generator, writing one `<package>.rs` per package into `OUT_DIR`, and tell Cargo
/// to rerun when any of them changes.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> std::io::Result<()> {
    for p in protos {
        println!("cargo:rerun-if-changed={}", p.as_ref().display());
    }
    let descriptors =
        protox::compile(protos, includes).map_err(|e| std::io::Error::other(e.to_string()))?;
    compile_fds(descriptors)
}

/// Generate code for already compiled `descriptors` (with our generator and each package's
/// `FILE_DESCRIPTOR_SET`) into `OUT_DIR`.
pub fn compile_fds(descriptors: FileDescriptorSet) -> std::io::Result<()> {
    config_for(ServiceGenerator::new().file_descriptor_set(&descriptors)).compile_fds(descriptors)
}

/// `bytes` as a Rust byte string literal, split over lines.
fn byte_string_literal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 + 16);
    out.push_str("b\"");
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 32 == 0 {
            out.push_str("\\\n");
        }
        let _ = write!(out, "\\x{b:02x}");
    }
    out.push('"');
    out
}

/// `GrpcDemo` -> `grpc_demo`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_ascii_uppercase())) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A message type as seen from a module nested one level below the package's module.
fn type_path(path: &str) -> String {
    if path.starts_with("::") || path.starts_with("crate::") {
        path.to_owned()
    } else {
        format!("super::{path}")
    }
}

/// The generated code with its doc comments (proto comments, prost's and ours) made safe
/// for rustdoc: outside code spans and code blocks, a `<` that does not open a URL is
/// escaped, so `<package>` in a proto comment reads as text, not as an HTML tag.
fn escape_doc_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + 64);
    let mut fenced = false;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let Some(text) = trimmed.strip_prefix("///") else {
            fenced = false;
            out.push_str(line);
            continue;
        };
        out.push_str(&line[..line.len() - trimmed.len()]);
        out.push_str("///");
        let content = text.strip_prefix(' ').unwrap_or(text);
        if content.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push_str(text);
            continue;
        }
        // Indented code (four spaces) and fenced code keep their text.
        if fenced || content.starts_with("    ") {
            out.push_str(text);
            continue;
        }
        let mut in_code = false;
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            match c {
                '`' => in_code = !in_code,
                '<' if !in_code
                    && !rest[1..].starts_with("http://")
                    && !rest[1..].starts_with("https://") =>
                {
                    out.push('\\');
                }
                _ => {}
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

impl prost_build::ServiceGenerator for ServiceGenerator {
    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        *buf = escape_doc_comments(buf);
        let Some(encoded) = self.package_descriptor_set(package) else {
            return;
        };
        let _ = writeln!(
            buf,
            "/// The encoded `google.protobuf.FileDescriptorSet` of package `{package}`'s files and\n\
             /// all they import (for server reflection)."
        );
        let _ = writeln!(
            buf,
            "pub const FILE_DESCRIPTOR_SET: &[u8] = {};",
            byte_string_literal(&encoded)
        );
    }

    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        let rt = &self.runtime;
        let full_name = if service.package.is_empty() {
            service.proto_name.clone()
        } else {
            format!("{}.{}", service.package, service.proto_name)
        };
        let trait_name = &service.name;
        let module = snake_case(&service.name);

        // ---- server
        let _ = writeln!(
            buf,
            "/// Server side of `{full_name}`: implement [`{module}_server::{trait_name}`] and serve"
        );
        let _ = writeln!(buf, "/// it with [`{module}_server::{trait_name}Server`].");
        let _ = writeln!(buf, "pub mod {module}_server {{");
        let _ = writeln!(
            buf,
            "    #![allow(unused_variables, dead_code, clippy::all)]"
        );
        let _ = writeln!(buf, "    /// The fully qualified name of the service.");
        let _ = writeln!(buf, "    pub const SERVICE_NAME: &str = \"{full_name}\";");
        service.comments.append_with_indent(1, buf);
        let _ = writeln!(buf, "    pub trait {trait_name}: Send + Sync + 'static {{");
        for m in &service.methods {
            let input = type_path(&m.input_type);
            let output = type_path(&m.output_type);
            let request = if m.client_streaming {
                format!("{rt}::Request<{rt}::Streaming<{input}>>")
            } else {
                format!("{rt}::Request<{input}>")
            };
            let response = if m.server_streaming {
                format!("{rt}::Response<{rt}::ResponseStream<{output}>>")
            } else {
                format!("{rt}::Response<{output}>")
            };
            m.comments.append_with_indent(2, buf);
            let _ = writeln!(
                buf,
                "        fn {}(&self, request: {request}) -> impl ::core::future::Future<Output = ::core::result::Result<{response}, {rt}::Status>> + Send;",
                m.name
            );
        }
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(
            buf,
            "    /// Routes calls of `{full_name}` to a [`{trait_name}`]."
        );
        let _ = writeln!(buf, "    pub struct {trait_name}Server<T> {{");
        let _ = writeln!(buf, "        inner: ::std::sync::Arc<T>,");
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(buf, "    impl<T: {trait_name}> {trait_name}Server<T> {{");
        let _ = writeln!(buf, "        /// Serve `service`.");
        let _ = writeln!(
            buf,
            "        pub fn new(service: T) -> Self {{ Self {{ inner: ::std::sync::Arc::new(service) }} }}"
        );
        let _ = writeln!(buf, "        /// Serve a shared `service`.");
        let _ = writeln!(
            buf,
            "        pub fn from_arc(service: ::std::sync::Arc<T>) -> Self {{ Self {{ inner: service }} }}"
        );
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(
            buf,
            "    impl<T> ::core::clone::Clone for {trait_name}Server<T> {{"
        );
        let _ = writeln!(
            buf,
            "        fn clone(&self) -> Self {{ Self {{ inner: self.inner.clone() }} }}"
        );
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(
            buf,
            "    impl<T: {trait_name}> {rt}::server::Service for {trait_name}Server<T> {{"
        );
        let _ = writeln!(
            buf,
            "        fn name(&self) -> &'static str {{ SERVICE_NAME }}"
        );
        if self.package_descriptor_set(&service.package).is_some() {
            let _ = writeln!(
                buf,
                "        fn file_descriptor_set(&self) -> ::core::option::Option<&'static [u8]> {{ ::core::option::Option::Some(super::FILE_DESCRIPTOR_SET) }}"
            );
        }
        let _ = writeln!(
            buf,
            "        fn call(&self, method: &str, call: {rt}::server::Call) -> ::core::result::Result<{rt}::server::CallFuture, {rt}::server::Call> {{"
        );
        let _ = writeln!(buf, "            match method {{");
        for m in &service.methods {
            let kind = match (m.client_streaming, m.server_streaming) {
                (false, false) => "unary",
                (true, false) => "client_streaming",
                (false, true) => "server_streaming",
                (true, true) => "streaming",
            };
            let _ = writeln!(buf, "                \"{}\" => {{", m.proto_name);
            let _ = writeln!(buf, "                    let service = self.inner.clone();");
            let _ = writeln!(
                buf,
                "                    Ok(call.named(\"{full_name}/{}\").{kind}(move |request| async move {{ service.{}(request).await }}))",
                m.proto_name, m.name
            );
            let _ = writeln!(buf, "                }}");
        }
        let _ = writeln!(buf, "                _ => Err(call),");
        let _ = writeln!(buf, "            }}");
        let _ = writeln!(buf, "        }}");
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(buf, "}}");

        // ---- client
        let _ = writeln!(buf, "/// Client side of `{full_name}`.");
        let _ = writeln!(buf, "pub mod {module}_client {{");
        let _ = writeln!(
            buf,
            "    #![allow(unused_variables, dead_code, clippy::all)]"
        );
        service.comments.append_with_indent(1, buf);
        let _ = writeln!(buf, "    #[derive(Debug, Clone)]");
        let _ = writeln!(buf, "    pub struct {trait_name}Client {{");
        let _ = writeln!(buf, "        channel: {rt}::Channel,");
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(buf, "    impl {trait_name}Client {{");
        let _ = writeln!(buf, "        /// A client calling over `channel`.");
        let _ = writeln!(
            buf,
            "        pub fn new(channel: {rt}::Channel) -> Self {{ Self {{ channel }} }}"
        );
        let _ = writeln!(
            buf,
            "        /// Connect to `target`: `host:port`, `http://host:port`, `https://host:port`"
        );
        let _ = writeln!(
            buf,
            "        /// (TLS with the system's roots), a `SocketAddr`, or any form `Channel::builder` takes."
        );
        let _ = writeln!(
            buf,
            "        pub async fn connect(target: impl {rt}::IntoAddress) -> ::core::result::Result<Self, {rt}::Error> {{ Ok(Self::new({rt}::Channel::connect(target).await?)) }}"
        );
        let _ = writeln!(buf, "        /// The channel calls go over.");
        let _ = writeln!(
            buf,
            "        pub fn channel(&self) -> &{rt}::Channel {{ &self.channel }}"
        );
        for m in &service.methods {
            let input = type_path(&m.input_type);
            let output = type_path(&m.output_type);
            let path = format!("/{full_name}/{}", m.proto_name);
            let path_expr = format!("{rt}::http::uri::PathAndQuery::from_static(\"{path}\")");
            m.comments.append_with_indent(2, buf);
            match (m.client_streaming, m.server_streaming) {
                (false, false) | (false, true) => {
                    let (response, call) = if m.server_streaming {
                        (
                            format!("{rt}::Response<{rt}::Streaming<{output}>>"),
                            "server_streaming",
                        )
                    } else {
                        (format!("{rt}::Response<{output}>"), "unary")
                    };
                    let _ = writeln!(
                        buf,
                        "        pub async fn {}(&self, request: impl ::core::convert::Into<{rt}::Request<{input}>>) -> ::core::result::Result<{response}, {rt}::Status> {{",
                        m.name
                    );
                    let _ = writeln!(
                        buf,
                        "            self.channel.{call}({path_expr}, request.into()).await"
                    );
                    let _ = writeln!(buf, "        }}");
                }
                (true, server_streaming) => {
                    let (response, call) = if server_streaming {
                        (
                            format!("{rt}::Response<{rt}::Streaming<{output}>>"),
                            "streaming",
                        )
                    } else {
                        (format!("{rt}::Response<{output}>"), "client_streaming")
                    };
                    let _ = writeln!(
                        buf,
                        "        pub async fn {}(&self, request: impl {rt}::IntoStreamingRequest<Message = {input}>) -> ::core::result::Result<{response}, {rt}::Status> {{",
                        m.name
                    );
                    let _ = writeln!(
                        buf,
                        "            self.channel.{call}({path_expr}, request.into_streaming_request()).await"
                    );
                    let _ = writeln!(buf, "        }}");
                }
            }
        }
        let _ = writeln!(buf, "    }}");
        let _ = writeln!(buf, "}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("GrpcDemo"), "grpc_demo");
        assert_eq!(snake_case("TestService"), "test_service");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Health"), "health");
        assert_eq!(snake_case("V1Alpha"), "v1_alpha");
    }

    #[test]
    fn a_downstream_proto_gets_a_trait_an_adapter_and_a_client() {
        let dir = std::env::temp_dir().join(format!("h2grpc-codegen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hello.proto"),
            "syntax = \"proto3\"; package hello.v1;\n\
             message Ping { string text = 1; }\n\
             // Says hello.\n\
             service HelloService {\n\
               rpc Say(Ping) returns (Ping);\n\
               rpc Gather(stream Ping) returns (Ping);\n\
               rpc Spread(Ping) returns (stream Ping);\n\
               rpc Chat(stream Ping) returns (stream Ping);\n\
             }\n",
        )
        .unwrap();
        let descriptors = protox::compile([dir.join("hello.proto")], [&dir]).unwrap();
        let generator = ServiceGenerator::new()
            .runtime_path("::my_grpc")
            .file_descriptor_set(&descriptors);
        prost_build::Config::new()
            .out_dir(&dir)
            .service_generator(Box::new(generator))
            .compile_fds(descriptors)
            .unwrap();
        let code = std::fs::read_to_string(dir.join("hello.v1.rs")).unwrap();
        for expected in [
            "pub mod hello_service_server",
            "pub const SERVICE_NAME: &str = \"hello.v1.HelloService\"",
            "pub trait HelloService: Send + Sync + 'static",
            "/// Says hello.",
            "fn say(",
            ".unary(move |request|",
            ".client_streaming(move |request|",
            ".server_streaming(move |request|",
            ".streaming(move |request|",
            "\"Chat\" =>",
            "pub struct HelloServiceClient",
            "\"/hello.v1.HelloService/Say\"",
            "::my_grpc::IntoStreamingRequest<Message = super::Ping>",
            "pub const FILE_DESCRIPTOR_SET: &[u8] = b\"\\x",
        ] {
            assert!(code.contains(expected), "missing {expected:?} in:\n{code}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_package_set_holds_its_files_after_their_imports_without_source_info() {
        let dir = std::env::temp_dir().join(format!("h2grpc-codegen-fds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("base.proto"),
            "syntax = \"proto3\"; package base; message Id { string id = 1; }\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("other.proto"),
            "syntax = \"proto3\"; package other; message Unused { int32 x = 1; }\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("app.proto"),
            "syntax = \"proto3\"; package app; import \"base.proto\";\n\
             // Commented.\n\
             service App { rpc Get(base.Id) returns (base.Id); }\n",
        )
        .unwrap();
        let descriptors =
            protox::compile([dir.join("app.proto"), dir.join("other.proto")], [&dir]).unwrap();
        let generator = ServiceGenerator::new().file_descriptor_set(&descriptors);
        let set = generator.package_descriptor_set("app").unwrap();
        let set = FileDescriptorSet::decode(set.as_slice()).unwrap();
        let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["base.proto", "app.proto"]);
        assert!(set.file.iter().all(|f| f.source_code_info.is_none()));
        assert!(generator.package_descriptor_set("nowhere").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn doc_comments_escape_angle_brackets_outside_code_and_urls() {
        let code = "/// Lists `<package>.<service>` for <package> (see <https://grpc.io>).\n\
                    ///\n\
                    /// ```\n\
                    /// let x: Vec<u8> = vec![];\n\
                    /// ```\n\
                    ///     indented <code>\n\
                    pub struct A<T>(T); // <not a doc>\n";
        assert_eq!(
            escape_doc_comments(code),
            "/// Lists `<package>.<service>` for \\<package> (see <https://grpc.io>).\n\
             ///\n\
             /// ```\n\
             /// let x: Vec<u8> = vec![];\n\
             /// ```\n\
             ///     indented <code>\n\
             pub struct A<T>(T); // <not a doc>\n"
        );
    }

    #[test]
    fn byte_string_literals_escape_every_byte() {
        assert_eq!(byte_string_literal(b"\n\x00A"), "b\"\\x0a\\x00\\x41\"");
    }

    #[test]
    fn type_paths_gain_one_level() {
        assert_eq!(type_path("Request"), "super::Request");
        assert_eq!(type_path("super::other::Msg"), "super::super::other::Msg");
        assert_eq!(type_path("::prost_types::Empty"), "::prost_types::Empty");
    }
}
