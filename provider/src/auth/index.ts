export {
  kubernetesReview,
  REFUSED_REVIEW_TTL_MS,
  REVIEW_CACHE_MAX_ENTRIES,
  REVIEW_TIMEOUT_MS,
  TokenReviewer,
  type ReviewFn,
  type ReviewStatus,
  type Reviewed,
} from './token-review.ts';
