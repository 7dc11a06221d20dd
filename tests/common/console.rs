//! Signing in to the console over HTTP, as a browser or a script would:
//! sessions (cookie and CSRF token), bearer tokens, or nobody.

use reqwest::Method;
use serde_json::{Value, json};

use super::TestApp;

/// How a request is signed: nobody, a console session, or a bearer token.
#[derive(Clone)]
pub enum Who {
    /// No credentials.
    Anonymous,
    /// A console session: its cookie and the CSRF token changes carry.
    Session {
        /// `switchboard_session=…`.
        cookie: String,
        /// Sent as `X-CSRF-Token`.
        csrf: String,
    },
    /// `Authorization: Bearer …`.
    Token(&'static str),
}

/// An HTTP client for the app's console and APIs.
pub struct Console {
    /// The client.
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Console {
    /// A client for `t`, after setting each `(agent, password)`.
    pub async fn new(t: &TestApp, passwords: &[(&str, &str)]) -> Self {
        let auth =
            switchboard::auth::ConsoleAuth::new(t.core.store.clone(), t.core.desk.agents().clone());
        for (agent, password) in passwords {
            auth.set_password(agent, password).await.unwrap();
        }
        Self {
            http: reqwest::Client::new(),
            base: t.base().to_string(),
        }
    }

    /// Signs in with a password; panics unless it is accepted.
    pub async fn sign_in(&self, name: &str, password: &str) -> Who {
        let r = self
            .http
            .post(format!("{}/api/agent/session", self.base))
            .json(&json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "signing in as {name}");
        Self::session_of(r).await
    }

    /// The session a sign-in response (`POST /api/agent/session` or
    /// `/api/agent/invite`) opened.
    pub async fn session_of(r: reqwest::Response) -> Who {
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let me: Value = r.json().await.unwrap();
        Who::Session {
            cookie,
            csrf: me["csrf"].as_str().unwrap().to_string(),
        }
    }

    fn request(&self, who: &Who, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        match who {
            Who::Anonymous => {}
            Who::Session { cookie, csrf } => {
                request = request
                    .header("cookie", cookie)
                    .header("x-csrf-token", csrf)
            }
            Who::Token(token) => request = request.bearer_auth(token),
        }
        request
    }

    /// Status and JSON body (`null` when it is not JSON).
    pub async fn call(
        &self,
        who: &Who,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.request(who, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET` as JSON.
    pub async fn get(&self, who: &Who, path: &str) -> (u16, Value) {
        self.call(who, Method::GET, path, None).await
    }

    /// `POST` a JSON body.
    pub async fn post(&self, who: &Who, path: &str, body: Value) -> (u16, Value) {
        self.call(who, Method::POST, path, Some(body)).await
    }

    /// Status, content type and body text of `path`.
    pub async fn text(&self, who: &Who, method: Method, path: &str) -> (u16, String, String) {
        let r = self.request(who, method, path).send().await.unwrap();
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, kind, r.text().await.unwrap())
    }

    /// `GET` as text: status, content type and body.
    pub async fn get_text(&self, who: &Who, path: &str) -> (u16, String, String) {
        self.text(who, Method::GET, path).await
    }

    /// `GET` as JSON, which must succeed.
    pub async fn json(&self, who: &Who, path: &str) -> Value {
        let (status, _, body) = self.get_text(who, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}
