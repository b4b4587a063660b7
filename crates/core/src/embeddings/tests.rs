//! Golden tests of the embeddings request, each protocol's upstream body and answer, our answer
//! (floats and base64), and the errors.

use super::*;
use crate::money::Money;
use crate::pricing::{Charge, Cost};
use crate::protocol::usage_json;
use insta::assert_json_snapshot;

fn req(v: Value) -> EmbeddingsRequest {
    EmbeddingsRequest::parse(v.to_string().as_bytes()).unwrap()
}

fn err(v: Value) -> String {
    EmbeddingsRequest::parse(v.to_string().as_bytes())
        .unwrap_err()
        .message
        .to_string()
}

fn upstream(r: &EmbeddingsRequest, protocol: Protocol, model: &str) -> Value {
    serde_json::from_slice(&request_body(r, protocol, model).unwrap()).unwrap()
}

#[test]
fn parses_every_input_shape() {
    let one = req(json!({"model": "openai/text-embedding-3-small", "input": "abcdefgh"}));
    assert_eq!(one.models(), ["openai/text-embedding-3-small"]);
    assert_eq!(one.inputs(), [Input::Text("abcdefgh".into())]);
    assert_eq!(one.encoding(), Encoding::Float);
    assert_eq!(one.prompt_estimate(), 2);
    let batch = req(json!({"model": "m", "models": ["n"], "input": ["abcd", "abcdefghijkl"]}));
    assert_eq!(batch.models(), ["m", "n"]);
    assert_eq!(batch.prompt_estimate(), 4);
    assert_eq!(batch.longest_input_estimate(), 3);
    let ids = req(json!({"model": "m", "input": [1, 2, 3], "encoding_format": "base64"}));
    assert_eq!(ids.inputs(), [Input::Tokens(vec![1, 2, 3])]);
    assert_eq!(ids.encoding(), Encoding::Base64);
    let lists = req(json!({"model": "m", "input": [[1, 2], [3]]}));
    assert_eq!(
        lists.inputs(),
        [Input::Tokens(vec![1, 2]), Input::Tokens(vec![3])]
    );
    assert_eq!(lists.prompt_estimate(), 3);
}

#[test]
fn errors_name_the_field() {
    let errors: Vec<String> = [
        json!({"input": "x"}),
        json!({"model": "m"}),
        json!({"model": "m", "input": []}),
        json!({"model": "m", "input": 3}),
        json!({"model": "m", "input": [1, -2]}),
        json!({"model": "m", "input": ["a", [1, "b"]]}),
        json!({"model": "m", "input": [{"content": [{"type": "text", "text": "a"}]}]}),
        json!({"model": "m", "input": "a", "encoding_format": "int8"}),
        json!({"model": "m", "input": "a", "dimensions": 0}),
        json!({"model": "m", "input": "a", "input_type": 1}),
        json!({"model": "m", "input": "a", "user": false}),
    ]
    .into_iter()
    .map(err)
    .collect();
    assert_json_snapshot!(errors, @r#"
    [
      "`model` is required, e.g. \"model\": \"openai/gpt-4o-mini\"",
      "`input` is required",
      "`input` must not be empty",
      "`input` must be a string, an array of strings, an array of token ids, or an array of token-id arrays",
      "`input` must be a string, an array of strings, an array of token ids, or an array of token-id arrays",
      "`input[1]` must be an array of token ids",
      "Multimodal `input` (objects with `content`) is not supported yet; send text or token ids",
      "`encoding_format` must be \"float\" or \"base64\"",
      "`dimensions` must be a positive integer",
      "`input_type` must be a string",
      "`user` must be a string"
    ]
    "#);
    let too_many = vec![json!("a"); MAX_INPUTS + 1];
    assert_eq!(
        err(json!({"model": "m", "input": too_many})),
        "`input` may hold at most 2048 items"
    );
}

#[test]
fn openai_and_azure_requests() {
    let r = req(json!({
        "model": "openai/text-embedding-3-small", "input": ["a", "b"], "dimensions": 8,
        "encoding_format": "base64", "user": "u1", "input_type": "search_query",
        "provider": {"order": ["openai"]}
    }));
    assert_json_snapshot!(upstream(&r, Protocol::OpenAi, "text-embedding-3-small"), @r#"
    {
      "dimensions": 8,
      "encoding_format": "float",
      "input": [
        "a",
        "b"
      ],
      "model": "text-embedding-3-small",
      "user": "u1"
    }
    "#);
    assert_eq!(
        upstream(&r, Protocol::Azure, "text-embedding-3-small"),
        upstream(&r, Protocol::OpenAi, "text-embedding-3-small")
    );
    assert_eq!(path(Protocol::OpenAi, "x"), "/embeddings");
    assert_eq!(
        path(Protocol::Azure, "text-embedding-3-small"),
        "/deployments/text-embedding-3-small/embeddings"
    );
    let ids = req(json!({"model": "m", "input": [[1, 2], [3]]}));
    assert_eq!(
        upstream(&ids, Protocol::OpenAi, "m")["input"],
        json!([[1, 2], [3]])
    );
}

#[test]
fn gemini_request() {
    let r = req(json!({
        "model": "google/gemini-embedding-001", "input": ["a", "b"], "dimensions": 4,
        "input_type": "search_query"
    }));
    assert_json_snapshot!(upstream(&r, Protocol::Gemini, "gemini-embedding-001"), @r#"
    {
      "requests": [
        {
          "content": {
            "parts": [
              {
                "text": "a"
              }
            ]
          },
          "model": "models/gemini-embedding-001",
          "outputDimensionality": 4,
          "taskType": "RETRIEVAL_QUERY"
        },
        {
          "content": {
            "parts": [
              {
                "text": "b"
              }
            ]
          },
          "model": "models/gemini-embedding-001",
          "outputDimensionality": 4,
          "taskType": "RETRIEVAL_QUERY"
        }
      ]
    }
    "#);
    assert_eq!(
        path(Protocol::Gemini, "gemini-embedding-001"),
        "/models/gemini-embedding-001:batchEmbedContents"
    );
    let plain = req(json!({"model": "m", "input": "a", "input_type": "whatever"}));
    assert_eq!(
        upstream(&plain, Protocol::Gemini, "m")["requests"][0]
            .get("taskType")
            .cloned(),
        None
    );
}

#[test]
fn cohere_request() {
    let r = req(json!({"model": "cohere/embed-v4.0", "input": ["a", "b"], "dimensions": 256}));
    assert_json_snapshot!(upstream(&r, Protocol::Cohere, "embed-v4.0"), @r#"
    {
      "embedding_types": [
        "float"
      ],
      "input_type": "search_document",
      "model": "embed-v4.0",
      "output_dimension": 256,
      "texts": [
        "a",
        "b"
      ]
    }
    "#);
    assert_eq!(path(Protocol::Cohere, "embed-v4.0"), "/embed");
    let query = req(json!({"model": "m", "input": "a", "input_type": "search_query"}));
    assert_eq!(
        upstream(&query, Protocol::Cohere, "m")["input_type"],
        "search_query"
    );
}

#[test]
fn vertex_request() {
    let r = req(json!({
        "model": "google/text-embedding-005", "input": ["a", "b"], "dimensions": 256,
        "input_type": "search_document"
    }));
    assert_json_snapshot!(upstream(&r, Protocol::Vertex, "text-embedding-005"), @r#"
    {
      "instances": [
        {
          "content": "a",
          "task_type": "RETRIEVAL_DOCUMENT"
        },
        {
          "content": "b",
          "task_type": "RETRIEVAL_DOCUMENT"
        }
      ],
      "parameters": {
        "autoTruncate": false,
        "outputDimensionality": 256
      }
    }
    "#);
    assert_eq!(
        path(Protocol::Vertex, "text-embedding-005"),
        "/publishers/google/models/text-embedding-005:predict"
    );
    assert_eq!(
        path(
            Protocol::Vertex,
            "publishers/google/models/gemini-embedding-001"
        ),
        "/publishers/google/models/gemini-embedding-001:predict"
    );
    let plain = req(json!({"model": "m", "input": "a"}));
    assert_json_snapshot!(upstream(&plain, Protocol::Vertex, "m"), @r#"
    {
      "instances": [
        {
          "content": "a"
        }
      ],
      "parameters": {
        "autoTruncate": false
      }
    }
    "#);
}

#[test]
fn bedrock_titan_request() {
    const TITAN: &str = "amazon.titan-embed-text-v2:0";
    assert_eq!(
        path(Protocol::Bedrock, TITAN),
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    let r =
        req(json!({"model": "amazon/titan-embed-text-v2", "input": "hello", "dimensions": 512}));
    assert_json_snapshot!(upstream(&r, Protocol::Bedrock, TITAN), @r#"
    {
      "dimensions": 512,
      "inputText": "hello",
      "normalize": true
    }
    "#);
    let one = req(json!({"model": "m", "input": ["hello"]}));
    assert_json_snapshot!(upstream(&one, Protocol::Bedrock, TITAN), @r#"
    {
      "inputText": "hello",
      "normalize": true
    }
    "#);
    // Titan V1 takes only the text.
    assert_json_snapshot!(upstream(&one, Protocol::Bedrock, "amazon.titan-embed-text-v1"), @r#"
    {
      "inputText": "hello"
    }
    "#);

    let errors: Vec<String> = [
        (json!({"model": "m", "input": ["a", "b"]}), TITAN),
        (
            json!({"model": "m", "input": "a", "dimensions": 300}),
            TITAN,
        ),
        (
            json!({"model": "m", "input": "a", "dimensions": 256}),
            "amazon.titan-embed-text-v1",
        ),
        (
            json!({"model": "m", "input": "a"}),
            "amazon.nova-2-multimodal-embeddings-v1:0",
        ),
    ]
    .into_iter()
    .map(|(body, model)| {
        let e = request_body(&req(body), Protocol::Bedrock, model).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
        e.message.to_string()
    })
    .collect();
    assert_json_snapshot!(errors, @r#"
    [
      "Amazon Titan Embeddings takes one input per request: send `input` as a single string",
      "`dimensions` must be 256, 512 or 1024 for Amazon Titan Text Embeddings V2",
      "`dimensions` is not supported by this model; Amazon Titan Text Embeddings V2 takes it",
      "Embeddings with `amazon.nova-2-multimodal-embeddings-v1:0` are not supported over Amazon Bedrock (Amazon Titan Text Embeddings and Cohere Embed are)"
    ]
    "#);
}

#[test]
fn bedrock_cohere_request() {
    let r = req(
        json!({"model": "cohere/embed-v4.0", "input": ["a", "b"], "dimensions": 256,
        "input_type": "search_query"}),
    );
    assert_json_snapshot!(upstream(&r, Protocol::Bedrock, "cohere.embed-v4:0"), @r#"
    {
      "embedding_types": [
        "float"
      ],
      "input_type": "search_query",
      "output_dimension": 256,
      "texts": [
        "a",
        "b"
      ]
    }
    "#);
    assert_eq!(
        path(Protocol::Bedrock, "us.cohere.embed-v4:0"),
        "/model/us.cohere.embed-v4%3A0/invoke"
    );
    let v3 = req(json!({"model": "m", "input": "a", "input_type": "nonsense"}));
    assert_json_snapshot!(upstream(&v3, Protocol::Bedrock, "cohere.embed-english-v3"), @r#"
    {
      "embedding_types": [
        "float"
      ],
      "input_type": "search_document",
      "texts": [
        "a"
      ]
    }
    "#);
    let dims = req(json!({"model": "m", "input": "a", "dimensions": 256}));
    assert!(request_body(&dims, Protocol::Bedrock, "cohere.embed-multilingual-v3").is_err());
}

#[test]
fn token_ids_only_go_to_openai_compatible_upstreams() {
    let ids = req(json!({"model": "m", "input": [1, 2]}));
    for (protocol, name) in [
        (Protocol::Gemini, "Google AI Studio"),
        (Protocol::Cohere, "Cohere"),
        (Protocol::Vertex, "Google Vertex AI"),
        (Protocol::Bedrock, "Amazon Bedrock"),
    ] {
        let e = request_body(&ids, protocol, "m").unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
        assert_eq!(
            e.message,
            format!("{name} does not accept token ids as `input`; send text")
        );
    }
    assert!(request_body(&ids, Protocol::Anthropic, "m").is_err());
}

#[test]
fn parses_each_protocols_answer_in_input_order() {
    let r = req(json!({"model": "m", "input": ["abcdefgh", "abcd"]}));
    // OpenAI: out of order on the wire, put back by `index`.
    let openai = json!({"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": 1, "embedding": [0.5, -0.5]},
        {"object": "embedding", "index": 0, "embedding": [0.25, 1.0]}
    ], "usage": {"prompt_tokens": 7, "total_tokens": 7}});
    let got = parse_response(Protocol::OpenAi, openai.to_string().as_bytes(), &r).unwrap();
    assert_eq!(got.vectors, [vec![0.25, 1.0], vec![0.5, -0.5]]);
    assert_eq!(got.usage.prompt_tokens, 7);
    // Gemini reports no usage: the estimate stands in.
    let gemini = json!({"embeddings": [{"values": [0.1]}, {"values": [0.2]}]});
    let got = parse_response(Protocol::Gemini, gemini.to_string().as_bytes(), &r).unwrap();
    assert_eq!(got.vectors, [vec![0.1], vec![0.2]]);
    assert_eq!(got.usage.prompt_tokens, r.prompt_estimate());
    assert_eq!(got.usage.prompt_tokens, 3);
    let cohere = json!({"id": "c-1", "texts": ["abcdefgh", "abcd"],
        "embeddings": {"float": [[0.3], [0.4]]},
        "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 5}},
        "response_type": "embeddings_by_type"});
    let got = parse_response(Protocol::Cohere, cohere.to_string().as_bytes(), &r).unwrap();
    assert_eq!(got.vectors, [vec![0.3], vec![0.4]]);
    assert_eq!(got.usage.prompt_tokens, 5);
    assert_eq!(got.upstream_id.as_deref(), Some("c-1"));
}

#[test]
fn parses_vertex_and_bedrock_answers() {
    let r = req(json!({"model": "m", "input": ["abcdefgh", "abcd"]}));
    let vertex = json!({"predictions": [
        {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 6, "truncated": false}}},
        {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 3.0, "truncated": false}}}
    ], "metadata": {"billableCharacterCount": 12}});
    let got = parse_response(Protocol::Vertex, vertex.to_string().as_bytes(), &r).unwrap();
    assert_eq!(got.vectors, [vec![0.1, 0.2], vec![0.3, 0.4]]);
    assert_eq!(got.usage.prompt_tokens, 9);
    // Without statistics, the estimate stands in.
    let bare = json!({"predictions": [{"embeddings": {"values": [0.1]}},
        {"embeddings": {"values": [0.2]}}]});
    let got = parse_response(Protocol::Vertex, bare.to_string().as_bytes(), &r).unwrap();
    assert_eq!(got.usage.prompt_tokens, r.prompt_estimate());

    // Cohere on Bedrock, by type or bare; its count is in a header only.
    for cohere in [
        json!({"id": "b-1", "embeddings": {"float": [[0.5], [0.6]]}, "texts": ["abcdefgh", "abcd"],
            "response_type": "embeddings_by_type"}),
        json!({"id": "b-1", "embeddings": [[0.5], [0.6]], "texts": ["abcdefgh", "abcd"],
            "response_type": "embeddings_floats"}),
    ] {
        let got = parse_response(Protocol::Bedrock, cohere.to_string().as_bytes(), &r).unwrap();
        assert_eq!(got.vectors, [vec![0.5], vec![0.6]]);
        assert_eq!(got.usage.prompt_tokens, r.prompt_estimate());
        assert_eq!(got.upstream_id.as_deref(), Some("b-1"));
    }

    let one = req(json!({"model": "m", "input": "hello"}));
    let titan = json!({"embedding": [0.25, -0.75], "embeddingsByType": {"float": [0.25, -0.75]},
        "inputTextTokenCount": 2});
    let got = parse_response(Protocol::Bedrock, titan.to_string().as_bytes(), &one).unwrap();
    assert_eq!(got.vectors, [vec![0.25, -0.75]]);
    assert_eq!(got.usage.prompt_tokens, 2);
    assert_eq!(got.upstream_id, None);
}

#[test]
fn unreadable_or_short_answers_are_upstream_errors() {
    let r = req(json!({"model": "m", "input": ["a", "b"]}));
    let short = json!({"data": [{"index": 0, "embedding": [0.1]}]});
    for (protocol, body) in [
        (Protocol::OpenAi, short.to_string()),
        (Protocol::OpenAi, "not json".to_owned()),
        (
            Protocol::OpenAi,
            json!({"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.1]}]})
                .to_string(),
        ),
        (Protocol::Gemini, json!({"embeddings": []}).to_string()),
        (Protocol::Cohere, json!({"embeddings": {}}).to_string()),
        (
            Protocol::Vertex,
            json!({"predictions": [{"embeddings": {"values": [0.1]}}]}).to_string(),
        ),
        (
            Protocol::Vertex,
            json!({"predictions": [{}, {}]}).to_string(),
        ),
        (Protocol::Bedrock, json!({"embedding": [0.1]}).to_string()),
        (
            Protocol::Bedrock,
            json!({"embeddings": {"float": [[0.1], ["x"]]}}).to_string(),
        ),
        (Protocol::Bedrock, "[]".to_owned()),
    ] {
        let e = parse_response(protocol, body.as_bytes(), &r).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::UpstreamError, "{body}");
    }
}

#[test]
fn embedding_errors_map_through_each_protocols_mapper() {
    // The server maps an embeddings upstream's error with its wire format's mapper, as for chat.
    use crate::protocol::{bedrock, cohere, gemini, openai};
    let e = openai::upstream_error(500, br#"{"error": {"message": "boom"}}"#, "OpenAI", None);
    assert_eq!(e.metadata.as_ref().unwrap()["raw"], "boom");
    assert_eq!(e.metadata.as_ref().unwrap()["provider_name"], "OpenAI");
    let e = cohere::upstream_error(400, br#"{"message": "bad texts"}"#, "Cohere", None);
    assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
    assert_eq!(e.metadata.as_ref().unwrap()["raw"], "bad texts");
    let e = gemini::upstream_error(
        429,
        br#"{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}"#,
        "Google AI Studio",
        Some(3),
    );
    assert_eq!(e.code, crate::error::ErrorCode::RateLimited);
    assert_eq!(e.retry_after, Some(3));
    let e = gemini::upstream_error(
        400,
        br#"{"error": {"code": 400, "message": "bad instance", "status": "INVALID_ARGUMENT"}}"#,
        "Google Vertex AI",
        None,
    );
    assert_eq!(e.code, crate::error::ErrorCode::InvalidRequest);
    assert_eq!(e.metadata.as_ref().unwrap()["raw"], "bad instance");
    // Bedrock: the type from the header decides (a quota is a rate limit), and a too-long input
    // is a context-length error.
    let e = bedrock::upstream_error(
        400,
        Some("ServiceQuotaExceededException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        br#"{"message": "quota"}"#,
        "Amazon Bedrock",
        None,
    );
    assert_eq!(e.code, crate::error::ErrorCode::RateLimited);
    let e = bedrock::upstream_error(
        400,
        None,
        br#"{"message": "400 Bad Request: Too many input tokens. Max input tokens: 8192, request input token count: 9000 "}"#,
        "Amazon Bedrock",
        None,
    );
    assert_eq!(e.code, crate::error::ErrorCode::ContextLengthExceeded);
}

fn charge() -> Charge {
    Charge::platform(Cost {
        total: Money::from_nanos(140),
        prompt: Money::from_nanos(140),
        completion: Money::ZERO,
    })
}

fn rendered(encoding: Encoding) -> Value {
    let usage = Usage {
        prompt_tokens: 7,
        ..Usage::default()
    };
    let bytes = render(
        vec![vec![0.1, -1.0], vec![1.0, 0.5]],
        encoding,
        "openai/text-embedding-3-small",
        "OpenAI",
        "gen-1-abc",
        usage_json(&usage, &charge()),
    );
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn renders_floats() {
    assert_json_snapshot!(rendered(Encoding::Float), @r#"
    {
      "data": [
        {
          "embedding": [
            0.1,
            -1.0
          ],
          "index": 0,
          "object": "embedding"
        },
        {
          "embedding": [
            1.0,
            0.5
          ],
          "index": 1,
          "object": "embedding"
        }
      ],
      "id": "gen-1-abc",
      "model": "openai/text-embedding-3-small",
      "object": "list",
      "provider": "OpenAI",
      "usage": {
        "cost": 0.00000014,
        "cost_details": {
          "upstream_inference_completions_cost": 0.0,
          "upstream_inference_cost": null,
          "upstream_inference_prompt_cost": 0.00000014
        },
        "is_byok": false,
        "prompt_tokens": 7,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 7
      }
    }
    "#);
}

#[test]
fn renders_base64_of_little_endian_f32() {
    let body = rendered(Encoding::Base64);
    assert_json_snapshot!(body["data"], @r#"
    [
      {
        "embedding": "zczMPQAAgL8=",
        "index": 0,
        "object": "embedding"
      },
      {
        "embedding": "AACAPwAAAD8=",
        "index": 1,
        "object": "embedding"
      }
    ]
    "#);
    // 1.0f32 is 00 00 80 3f; padding for lengths not a multiple of three.
    assert_eq!(base64_f32(&[1.0]), "AACAPw==");
    assert_eq!(base64_f32(&[]), "");
    assert_eq!(base64_f32(&[1.0, 1.0, 1.0]), "AACAPwAAgD8AAIA/");
}
