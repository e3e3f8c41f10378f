//! `hello`: answers every request with its method, path and the installation's
//! configuration, and logs one line per request.
//!
//! ```text
//! GET /v1/integrations/hello/installations/inst_x/some/path
//! → 200 {"method":"GET","path":"/some/path","configuration":{…}}
//! ```

use serde_json::json;
use weft_sdk::{Environment, Handler, Request, Response, Result};

/// The integration.
#[derive(Debug, Default)]
pub struct Hello;

impl Handler for Hello {
    fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
        weft_sdk::log::info(format!("hello: {} {}", req.method, req.path));
        let body = json!({
            "method": req.method,
            "path": req.path,
            "configuration": env.configuration(),
        });
        Ok(Some(Response::json(&body)?))
    }
}

weft_sdk::export_handler!(Hello);

#[cfg(test)]
mod tests {
    use super::*;
    use weft_sdk::testing::{self, MockHost};

    #[test]
    fn answers_with_method_path_and_configuration() {
        let _host = MockHost::new();
        let env = Environment::default().with_configuration(json!({"greeting": "hi"}));
        let res = testing::fetch(&Hello, testing::fetch_request("GET", "/some/path?q=1"), &env)
            .into_response()
            .expect("a response, not the unhandled 406 path");
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(
            res.body_json::<serde_json::Value>().unwrap(),
            json!({"method": "GET", "path": "/some/path", "configuration": {"greeting": "hi"}})
        );
    }

    #[test]
    fn logs_one_line_per_request() {
        let host = MockHost::new();
        testing::fetch(&Hello, testing::fetch_request("POST", "/x"), &Environment::default());
        assert_eq!(host.log_messages(), ["hello: POST /x"]);
    }

    #[test]
    fn configuration_defaults_to_an_empty_object_without_an_installation() {
        let _host = MockHost::new();
        let res = testing::fetch(&Hello, testing::fetch_request("GET", "/"), &Environment::default())
            .into_response()
            .unwrap();
        assert_eq!(res.body_json::<serde_json::Value>().unwrap()["configuration"], json!({}));
    }

    #[test]
    fn the_raw_json_contract_holds() {
        let _host = MockHost::new();
        let outcome = testing::invoke(
            &Hello,
            &json!({
                "abi": 1,
                "event": {
                    "eventId": "evt_1",
                    "type": "fetch",
                    "request": {
                        "method": "GET",
                        "url": "http://host/v1/integrations/hello/installations/inst_x/some/path?q=1",
                        "path": "/some/path",
                        "query": "q=1",
                        "headers": {},
                        "body": ""
                    }
                },
                "environment": {"installation": {"id": "inst_x", "configuration": {"a": 1}}}
            }),
        );
        let response = &outcome["response"];
        assert_eq!(response["status"], 200);
        assert_eq!(response["headers"]["content-type"], "application/json");
        assert!(response["body"].is_string(), "{outcome}");
    }

    #[test]
    fn other_events_produce_no_outcome() {
        let _host = MockHost::new();
        let outcome =
            testing::invoke(&Hello, &testing::invocation(testing::task_event(json!({})), &Environment::default()));
        assert_eq!(outcome, json!({}));
    }
}
