//! What the server does for the web: whether it answers gRPC-Web and Connect beside gRPC
//! (and HTTP/1.1), the JSON descriptors of its services, CORS, and the plain HTTP handler
//! that takes every request that is not a call (a page, `/healthz`, `/metrics`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::call::{CallFuture, Route};
use crate::exchange::{RecvBody, Respond};
use crate::headers;
use crate::protocol::json::Descriptors;

/// Request headers the web protocols use, allowed in every CORS preflight.
const PROTOCOL_REQUEST_HEADERS: &str = "content-type, x-grpc-web, x-user-agent, grpc-timeout, \
     grpc-encoding, grpc-accept-encoding, connect-protocol-version, connect-timeout-ms, \
     connect-content-encoding, connect-accept-encoding, content-encoding, accept-encoding";
/// Response headers a browser script must be able to read.
const PROTOCOL_RESPONSE_HEADERS: &str = "grpc-status, grpc-message, grpc-status-details-bin, \
     grpc-encoding, grpc-accept-encoding, connect-content-encoding, connect-accept-encoding, \
     content-encoding";

/// Which origins may call the server from a browser, and which metadata they may send
/// and read (the protocol's own headers always are). Off unless set with
/// [`Server::cors`](crate::Server::cors).
#[derive(Clone, Debug)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Vec<HeaderValue>>,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: Duration,
}

impl Cors {
    /// Allow calls from every origin (a development server, a public API).
    pub fn allow_any_origin() -> Cors {
        Cors {
            origins: None,
            allow_headers: HeaderValue::from_static(PROTOCOL_REQUEST_HEADERS),
            expose_headers: HeaderValue::from_static(PROTOCOL_RESPONSE_HEADERS),
            max_age: Duration::from_secs(2 * 3600),
        }
    }

    /// Allow calls from these origins only (`https://app.example.com`, scheme, host and
    /// port as the browser sends them in `Origin`). Values that cannot be header values
    /// are left out.
    pub fn allow_origins<'a>(origins: impl IntoIterator<Item = &'a str>) -> Cors {
        let origins = origins
            .into_iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Cors {
            origins: Some(origins),
            ..Cors::allow_any_origin()
        }
    }

    /// Metadata keys the browser may send and read (beside the protocol's headers). A
    /// Connect unary response's trailers arrive as `trailer-` headers: they are exposed too.
    pub fn metadata_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Cors {
        let names: Vec<&str> = names.into_iter().collect();
        let mut allow = PROTOCOL_REQUEST_HEADERS.to_owned();
        let mut expose = PROTOCOL_RESPONSE_HEADERS.to_owned();
        for name in &names {
            allow.push_str(", ");
            allow.push_str(name);
            expose.push_str(", ");
            expose.push_str(name);
            expose.push_str(", trailer-");
            expose.push_str(name);
        }
        if let (Ok(allow), Ok(expose)) = (
            HeaderValue::from_str(&allow),
            HeaderValue::from_str(&expose),
        ) {
            self.allow_headers = allow;
            self.expose_headers = expose;
        }
        self
    }

    /// How long a browser may cache a preflight's answer (default 2 hours).
    pub fn max_age(mut self, max_age: Duration) -> Cors {
        self.max_age = max_age;
        self
    }

    /// The request's `Origin`, when it is allowed.
    fn allowed<'h>(&self, request: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let origin = request.get(ORIGIN)?;
        match &self.origins {
            None => Some(origin),
            Some(list) => list.iter().any(|o| o == origin).then_some(origin),
        }
    }
}

/// A plain HTTP handler for the requests that are not calls: any path no service owns,
/// or a method other than a call's. Its request has no body.
pub trait HttpHandler: Send + Sync + 'static {
    /// Answer `request`.
    fn handle(
        &self,
        request: http::Request<()>,
    ) -> Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + 'static>>;
}

/// An [`HttpHandler`] from an async function.
pub fn http_fn<F, Fut>(f: F) -> impl HttpHandler
where
    F: Fn(http::Request<()>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
{
    struct HttpFn<F>(F);
    impl<F, Fut> HttpHandler for HttpFn<F>
    where
        F: Fn(http::Request<()>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = http::Response<Bytes>> + Send + 'static,
    {
        fn handle(
            &self,
            request: http::Request<()>,
        ) -> Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send + 'static>> {
            Box::pin((self.0)(request))
        }
    }
    HttpFn(f)
}

/// The server's web settings, shared by its connections.
#[derive(Clone)]
pub(crate) struct Web {
    pub enabled: bool,
    pub descriptors: Descriptors,
    pub cors: Option<Cors>,
    pub handler: Option<Arc<dyn HttpHandler>>,
}

impl Web {
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn descriptors(&self) -> &Descriptors {
        &self.descriptors
    }

    /// The CORS headers of a response to `request`, when it comes from an allowed origin.
    #[inline]
    pub(crate) fn response_headers(&self, request: &HeaderMap) -> Option<Box<HeaderMap>> {
        let cors = self.cors.as_ref()?;
        let origin = cors.allowed(request)?;
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, cors.expose_headers.clone());
        headers.insert(VARY, HeaderValue::from_static("origin"));
        Some(Box::new(headers))
    }

    /// `response` with the CORS headers for `request`.
    pub(crate) fn decorate(
        &self,
        request: &HeaderMap,
        mut response: http::Response<()>,
    ) -> http::Response<()> {
        if let Some(extra) = self.response_headers(request) {
            response.headers_mut().extend(*extra);
        }
        response
    }

    /// A request that is no call: a CORS preflight, a call path with the wrong method or
    /// content type (405, 415), or anything else, for the plain HTTP handler (404 without
    /// one).
    pub(crate) fn not_a_call(
        &self,
        parts: http::request::Parts,
        body: RecvBody,
        mut respond: Respond,
        router: &impl Route,
    ) -> Option<CallFuture> {
        drop(body);
        if parts.method == Method::OPTIONS
            && let Some(cors) = &self.cors
            && parts.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            let mut response = headers::http_error(StatusCode::NO_CONTENT);
            if let Some(origin) = cors.allowed(&parts.headers) {
                let headers = response.headers_mut();
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, POST"),
                );
                headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, cors.allow_headers.clone());
                headers.insert(
                    ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from(cors.max_age.as_secs()),
                );
                headers.insert(VARY, HeaderValue::from_static("origin"));
            }
            let _ = respond.send_response(response, true);
            return None;
        }
        if router.route(parts.uri.path()).is_ok() {
            // A service's path, but not a call we read: grpc-go's answers.
            let status = match headers::check_http(&parts.method, &parts.headers) {
                Err(status) => status,
                Ok(()) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            let response = self.decorate(&parts.headers, headers::http_error(status));
            let _ = respond.send_response(response, true);
            return None;
        }
        let Some(handler) = self.handler.clone() else {
            let response =
                self.decorate(&parts.headers, headers::http_error(StatusCode::NOT_FOUND));
            let _ = respond.send_response(response, true);
            return None;
        };
        let extra = self.response_headers(&parts.headers);
        let request = http::Request::from_parts(parts, ());
        Some(Box::pin(async move {
            let (mut head, body) = handler.handle(request).await.into_parts();
            if let Some(extra) = extra {
                head.headers.extend(*extra);
            }
            let head = http::Response::from_parts(head, ());
            let empty = body.is_empty();
            if let Ok(mut stream) = respond.send_response(head, empty)
                && !empty
            {
                let _ = stream.send_data(body, true);
            }
        }))
    }
}
