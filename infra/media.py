"""The media bucket (private) and CloudFront in front of it (OAC, signed URLs only)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from chalicelib.render.cache import SegmentCache
from chalicelib.render.hls import chunk_blob, init_blob
from infra import checkov
from infra.retention import PERSONAL_MEDIA_PREFIXES

#: Days the access logs of the bucket and the distribution are kept.
ACCESS_LOG_DAYS = 90

_KEY = "0" * 64


def _top(key: str, parts: int = 1) -> str:
    return "/".join(key.split("/")[:parts]) + "/"


#: Objects no longer wanted after a while (their prefix as the code writes it → days from
#: creation): uploads once their batch has read them, a batch's working copies (its source and
#: item list), and what is rendered again on a miss (the segment cache's runs and audio tracks,
#: stream chunks). A retried upload older than this is a clear "gone" (services/batches.py).
UPLOAD_DAYS = 14
CACHE_DAYS = 30
EXPIRING: dict[str, int] = {
    "incoming/": UPLOAD_DAYS,  # infra/api.py INCOMING_PREFIX (the S3 trigger)
    "uploads/": UPLOAD_DAYS,  # POST /uploads
    "batches/": UPLOAD_DAYS,  # services/batches.py: batches/{id}/source.jsonl, items.json
    _top(SegmentCache.segment_key(_KEY)): CACHE_DAYS,
    _top(SegmentCache.audio_key(_KEY)): CACHE_DAYS,
    _top(init_blob(_KEY), 2): CACHE_DAYS,  # shared stream chunks and init segments (hls/s/)
}
#: Personal stream chunks: the campaigns' media retention when they set one, else this rule.
PERSONAL_CHUNKS = _top(chunk_blob(_KEY, personal=True), 2)


class MediaCdn(Construct):
    """The bucket of uploads, bundles, segments, videos and batch results, served through
    CloudFront to signed URLs of the key group holding `public_key_pem`.

    The bucket's notification names a function of the API (`send_created_objects`), so
    CloudFormation creates the bucket after that function. Everything upstream of it (the roles,
    the state machine, the distribution) therefore refers to the bucket by its name, never by
    Ref, through `bucket`; only the bucket policy and the notification touch the bucket itself.
    """

    def __init__(
        self, scope: Construct, id: str, *, public_key_pem: str, media_days: int | None = None
    ) -> None:
        super().__init__(scope, id)
        stack = cdk.Stack.of(self)
        # Access logs of the media bucket (S3 server access logs) and of the distribution
        # (CloudFront standard logs, which are written with an ACL: hence ObjectWriter).
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(ACCESS_LOG_DAYS))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        checkov.skip(
            self.access_logs,
            "CKV_AWS_18",
            "the access-log bucket itself: logging its own writes would log forever",
        )
        checkov.skip(
            self.access_logs,
            "CKV_AWS_21",
            f"access logs are written once and expire after {ACCESS_LOG_DAYS} days; versions "
            "would only keep expired logs",
        )
        self.bucket_name = cdk.Fn.join(
            "-", [stack.stack_name.lower(), "media", stack.account, stack.region]
        )
        self._bucket = s3.Bucket(
            self,
            "Media",
            bucket_name=self.bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=cdk.Duration.days(1)),
                s3.LifecycleRule(prefix="sfn-results/", expiration=cdk.Duration.days(30)),
                # Personal media expire after the campaigns' media retention (and an erased or
                # replaced object's older versions a day after, where versions are kept).
                *(
                    s3.LifecycleRule(
                        id=f"retention-{prefix.strip('/').replace('/', '-')}",
                        prefix=prefix,
                        expiration=cdk.Duration.days(media_days),
                        noncurrent_version_expiration=cdk.Duration.days(1),
                    )
                    for prefix in (PERSONAL_MEDIA_PREFIXES if media_days else ())
                ),
                # What is read once or made again on a miss (a missing segment or chunk is
                # simply rendered again): kept for a while, then expired.
                *(
                    s3.LifecycleRule(
                        id=f"expire-{prefix.strip('/').replace('/', '-')}",
                        prefix=prefix,
                        expiration=cdk.Duration.days(days),
                    )
                    for prefix, days in {
                        **EXPIRING,
                        **({} if media_days else {PERSONAL_CHUNKS: CACHE_DAYS}),
                    }.items()
                ),
            ],
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="media/",
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        checkov.skip(
            self._bucket,
            "CKV_AWS_21",
            "not versioned on purpose: every object is an upload its owner keeps or is rendered "
            "again from the template and data on demand, and old versions would keep erased or "
            "expired personal media past the campaigns' retention (and double the segments)",
        )
        #: The bucket by name: what every other construct uses (see the class docstring).
        self.bucket = s3.Bucket.from_bucket_attributes(
            self, "MediaByName", bucket_name=self.bucket_name, region=stack.region
        )

        # CloudFront's resources are named after their place in the construct tree (the key
        # group's, the public key's and the OAC's names, the origin's id, and the public key's
        # caller reference, which CloudFront never lets change): they sit on the stack, where
        # they were when stacks were first deployed, not in this construct.
        self.public_key = cloudfront.PublicKey(
            stack,
            "MediaPublicKey",
            encoded_key=public_key_pem,
            comment="Reel signed media URLs; the private key stays with the API's secret",
        )
        key_group = cloudfront.KeyGroup(stack, "MediaKeyGroup", items=[self.public_key])
        oac = cloudfront.S3OriginAccessControl(
            stack, "MediaOac", signing=cloudfront.Signing.SIGV4_ALWAYS
        )
        self.distribution = cloudfront.Distribution(
            stack,
            "Cdn",
            comment=f"{stack.stack_name} media",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    self.bucket,
                    origin_access_control=oac,
                    origin_access_levels=[cloudfront.AccessLevel.READ],
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                trusted_key_groups=[key_group],
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.access_logs,
            log_file_prefix="cdn/",
        )
        checkov.skip(
            self.distribution,
            "CKV_AWS_68",
            "every request needs a URL signed by the API's key group: WAF's monthly web ACL and "
            "per-request charges would guard an origin that answers nothing unsigned",
        )
        checkov.skip(
            self.distribution,
            "CKV_AWS_174",
            "served on the default *.cloudfront.net certificate, whose minimum protocol "
            "CloudFront fixes; a custom domain with its ACM certificate would set TLSv1.2_2021",
        )
        cdk.Annotations.of(self.distribution).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "the bucket policy statement for the OAC is added on the bucket itself below",
        )
        self._bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontOriginAccessControl",
                actions=["s3:GetObject"],
                resources=[self._bucket.arn_for_objects("*")],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": stack.format_arn(
                            service="cloudfront",
                            region="",
                            resource="distribution",
                            resource_name=self.distribution.distribution_id,
                        )
                    }
                },
            )
        )

    def send_created_objects(self, prefix: str, function: lambda_.IFunction) -> None:
        """Invoke `function` for each object created under `prefix`: a native notification (no
        CDK custom resource with s3:PutBucketNotification on "*")."""
        stack = cdk.Stack.of(self)
        permission = lambda_.CfnPermission(
            self,
            "IncomingFromMedia",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="s3.amazonaws.com",
            source_account=stack.account,
            source_arn=self.bucket.bucket_arn,
        )
        cfn_bucket = self._bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[
                s3.CfnBucket.LambdaConfigurationProperty(
                    event="s3:ObjectCreated:*",
                    function=function.function_arn,
                    filter=s3.CfnBucket.NotificationFilterProperty(
                        s3_key=s3.CfnBucket.S3KeyFilterProperty(
                            rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=prefix)]
                        )
                    ),
                )
            ]
        )
        cfn_bucket.add_resource_dependency(permission)  # S3 checks it when it saves this
