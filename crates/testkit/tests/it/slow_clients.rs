//! The public listener of the real shop against slow clients (slowloris): 300 connections
//! that send half a request head and then nothing do not stop anyone else.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;

#[tokio::test]
async fn three_hundred_half_open_connections_do_not_stop_new_requests() {
    let app = crate::spawn().await;
    let addr = app.addr;
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /api/v1/products HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let started = Instant::now();
    for path in ["/healthz", "/api/v1/products?limit=1"] {
        let res = tokio::time::timeout(Duration::from_secs(5), app.get(path).send())
            .await
            .expect("answered while the slow clients hang on")
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    drop(held);
}
