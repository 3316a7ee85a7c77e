//! Who may read the dashboard. With a token, every request must carry it (a header for
//! scripts, `?token=` for a browser, whose page passes it on to every call it makes). Without
//! one the server listens on loopback only, and also checks the `Host` header: otherwise a web
//! page on the laptop could rename itself to 127.0.0.1 by DNS rebinding and read the results.
//! A request without a `Host` header is refused like one with an empty `Host`.

use subtle::ConstantTimeEq;

pub struct Guard {
    token: Option<String>,
}

/// Why a request was refused: the HTTP status and a line for the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

impl Guard {
    /// Without a token, `serve::run` has made sure the server listens on loopback only.
    pub fn new(token: Option<String>) -> Guard {
        Guard { token }
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `authorization`: the `Authorization` header; `query_token`: `?token=`'s value; `host`:
    /// the `Host` header.
    pub fn check(
        &self,
        authorization: Option<&str>,
        query_token: Option<&str>,
        host: Option<&str>,
    ) -> Result<(), Refusal> {
        match &self.token {
            Some(token) => {
                let given = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim)
                    .or(query_token);
                match given {
                    Some(given) if same(given, token) => Ok(()),
                    Some(_) => Err(Refusal {
                        status: 401,
                        reason: "wrong token",
                    }),
                    None => Err(Refusal {
                        status: 401,
                        reason: "a token is required: add ?token=… or send Authorization: Bearer …",
                    }),
                }
            }
            // No Host header at all is refused like an empty one: what a rebinding page
            // cannot send is no reason to let a request through.
            None => match host {
                Some(host) if is_loopback_host(host) => Ok(()),
                _ => Err(Refusal {
                    status: 403,
                    reason: "this server answers to 127.0.0.1 and localhost only (Host header)",
                }),
            },
        }
    }
}

/// Constant-time comparison: every byte is compared whatever differs first, so the time an
/// answer takes does not tell how much of a guess was right (the length still shows).
fn same(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_needed_on_every_request_from_the_header_or_the_query() {
        let guard = Guard::new(Some("s3cret".into()));
        assert_eq!(guard.check(None, None, None).unwrap_err().status, 401);
        assert!(guard.check(Some("Bearer s3cret"), None, None).is_ok());
        assert!(guard
            .check(None, Some("s3cret"), Some("example.org"))
            .is_ok());
        assert_eq!(
            guard
                .check(Some("Bearer s3cre"), None, None)
                .unwrap_err()
                .reason,
            "wrong token"
        );
        assert!(guard.check(Some("Basic s3cret"), None, None).is_err());
        assert!(guard.check(None, Some("s3cret!"), None).is_err());
    }

    #[test]
    fn without_a_token_only_loopback_host_names_are_answered() {
        let guard = Guard::new(None);
        for host in [
            "127.0.0.1:8686",
            "localhost:8686",
            "LOCALHOST",
            "[::1]:8686",
            "127.1.2.3",
        ] {
            assert!(guard.check(None, None, Some(host)).is_ok(), "{host}");
        }
        for host in [
            "evil.example:8686",
            "192.168.1.5:8686",
            "localhost.evil.example",
        ] {
            assert_eq!(guard.check(None, None, Some(host)).unwrap_err().status, 403);
        }
        for host in [None, Some(""), Some(":8686")] {
            assert_eq!(
                guard.check(None, None, host).unwrap_err().status,
                403,
                "{host:?}"
            );
        }
    }
}
